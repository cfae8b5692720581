using BenchmarkDotNet.Attributes;
using Klaviyo.Functions.Calls;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Benchmarks;

/// <summary>
/// The whole standard mix through the transform, building every request body (profile id filled in), beside its floor
/// (System.Text.Json parse + write of the same events, <see cref="JsonFloor"/>).
/// </summary>
[MemoryDiagnoser]
public class TransformBenchmarks
{
    public const int MixSize = 10_000;
    private byte[][] _events = [];
    private KlaviyoTransformer _transformer = null!;

    [GlobalSetup]
    public void Setup()
    {
        _events = EventMix.Load();
        _transformer = new KlaviyoTransformer(EventMix.Settings());
    }

    [Benchmark(OperationsPerInvoke = MixSize, Baseline = true)]
    public long FloorParseAndWrite() => JsonFloor.ParseAndWriteAll(_events);

    [Benchmark(OperationsPerInvoke = MixSize)]
    public long TransformMix() => TransformAll(_transformer, _events);

    /// <summary>Transforms every event into its parts only (what the batch path uses); returns the parts' bytes.</summary>
    internal static long TransformToParts(KlaviyoTransformer transformer, byte[][] events)
    {
        long bytes = 0;
        foreach (var e in events)
        {
            bytes += transformer.Transform(e) switch
            {
                TransformResult.Planned { Parts: EventParts p } => p.Events.Sum(e => e.Attributes.Length) + p.Events[0].Profile.Data.Length,
                TransformResult.Planned { Parts: ProfileParts p } => p.Profile.Data.Length,
                _ => 0,
            };
        }
        return bytes;
    }

    /// <summary>Transforms every event and builds every request; returns the body bytes so nothing is optimised away.</summary>
    internal static long TransformAll(KlaviyoTransformer transformer, byte[][] events)
    {
        long bytes = 0;
        foreach (var e in events)
        {
            if (transformer.Transform(e) is TransformResult.Planned planned)
            {
                foreach (var step in planned.Plan.Steps)
                {
                    bytes += step.Build("01HBENCHPROFILE00000000000").Body.Length;
                }
            }
        }
        return bytes;
    }
}
