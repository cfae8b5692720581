using System.Diagnostics;
using BenchmarkDotNet.Running;
using Klaviyo.Functions.Benchmarks;
using Klaviyo.Functions.Transform;

// `--quick`: a plain single-threaded loop over the mix for a fast figure (events/s, bytes allocated per event).
// `--by-type`: the same per event type (see ByType). Anything else goes to BenchmarkDotNet (for example `--filter *Transform*`).
if (args.Contains("--quick"))
{
    var events = EventMix.Load();
    var transformer = new KlaviyoTransformer(EventMix.Settings());
    // Warm up for a few seconds so tiered JIT has replaced the first-tier code before the timed loop.
    var warmUp = Stopwatch.StartNew();
    while (warmUp.Elapsed < TimeSpan.FromSeconds(3))
    {
        TransformBenchmarks.TransformAll(transformer, events);
    }
    var rounds = 30;
    var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
    var watch = Stopwatch.StartNew();
    for (var i = 0; i < rounds; i++)
    {
        TransformBenchmarks.TransformAll(transformer, events);
    }
    watch.Stop();
    var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
    var total = (double)rounds * events.Length;
    Console.WriteLine($"transform: {total / watch.Elapsed.TotalSeconds:N0} events/s on one thread, {allocated / total:N0} bytes allocated per event ({total:N0} events)");
    return;
}

if (args.Contains("--by-type"))
{
    ByType.Run();
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(TransformBenchmarks).Assembly).Run(args);
