using System.Diagnostics;
using System.Text.Json;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Benchmarks;

/// <summary>
/// `--by-type`: the mix split by event type (track split by name), each group looped on one thread after a warm-up,
/// with time and bytes allocated per event and the body bytes per event (the part of the allocation that is output).
/// </summary>
public static class ByType
{
    public static void Run(double secondsPerGroup = 1.0)
    {
        var groups = EventMix.Load()
            .GroupBy(KeyOf)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToArray();
        var transformer = new KlaviyoTransformer(EventMix.Settings());
        Console.WriteLine($"{"group",-28} {"events",7} {"ns/event",9} {"B/event",8} {"body B/event",12}");
        foreach (var group in groups)
        {
            var events = group.ToArray();
            for (var i = 0; i < 200; i++)
            {
                TransformBenchmarks.TransformAll(transformer, events);
            }
            var bodyBytes = TransformBenchmarks.TransformAll(transformer, events);
            var rounds = 0;
            var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            var watch = Stopwatch.StartNew();
            while (watch.Elapsed.TotalSeconds < secondsPerGroup)
            {
                TransformBenchmarks.TransformAll(transformer, events);
                rounds++;
            }
            watch.Stop();
            var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
            var total = (double)rounds * events.Length;
            Console.WriteLine($"{group.Key,-28} {events.Length,7} {watch.Elapsed.TotalNanoseconds / total,9:N0} {allocated / total,8:N0} {bodyBytes / (double)events.Length,12:N0}");
        }
    }

    private static string KeyOf(byte[] utf8)
    {
        using var document = JsonDocument.Parse(utf8);
        var root = document.RootElement;
        var type = root.TryGetProperty("type", out var t) ? t.GetString() ?? "?" : "?";
        return type == "track" && root.TryGetProperty("event", out var e) ? $"track:{e.GetString()}" : type;
    }
}
