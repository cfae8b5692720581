using BenchmarkDotNet.Attributes;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Benchmarks;

/// <summary>
/// The bulk planning of 1,000-event batches of the standard mix (every message transformed, events packed into bulk
/// calls, profiles merged into import jobs per list, subscriptions grouped), beside its floor: System.Text.Json parse +
/// write of the same 1,000 events (<see cref="JsonFloor"/>).
/// </summary>
[MemoryDiagnoser]
public class PlanningBenchmarks
{
    public const int BatchSize = 1_000;
    private byte[][] _batch = [];
    private BatchMessage[] _messages = [];
    private BatchPlanner _planner = null!;

    [GlobalSetup]
    public void Setup()
    {
        (_batch, _messages, _planner) = Create();
    }

    internal static (byte[][] Events, BatchMessage[] Messages, BatchPlanner Planner) Create()
    {
        var events = EventMix.Load().Take(BatchSize).ToArray();
        var messages = events.Select((e, i) => new BatchMessage("bench-" + i, e, 1)).ToArray();
        var planner = new BatchPlanner(new KlaviyoTransformer(EventMix.Settings()), Options.Create(new RelayOptions()));
        return (events, messages, planner);
    }

    [Benchmark(Baseline = true)]
    public long FloorParseAndWrite() => JsonFloor.ParseAndWriteAll(_batch);

    [Benchmark]
    public int PlanBatch() => PlanOnce(_planner, _messages);

    /// <summary>Plans one batch; returns the number of bulk calls so nothing is optimised away.</summary>
    internal static int PlanOnce(BatchPlanner planner, BatchMessage[] messages)
    {
        var plan = planner.Plan(messages, bulkProfiles: true);
        return plan.EventCalls.Count + plan.ImportJobs.Count + plan.Subscriptions.Count + plan.Singles.Count;
    }
}
