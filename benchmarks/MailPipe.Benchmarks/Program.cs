using BenchmarkDotNet.Running;

// Every option of BenchmarkDotNet's command line works: --filter, --job dry|short|medium|long, --list flat, ...
var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

// Non-zero when a benchmark failed (a GlobalSetup check threw, a build error, a validation error), so that a CI
// dry run catches benchmarks that rot.
var failed = summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success));
return failed ? 1 : 0;
