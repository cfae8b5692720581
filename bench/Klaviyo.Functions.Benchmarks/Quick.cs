using System.Diagnostics;

namespace Klaviyo.Functions.Benchmarks;

/// <summary>
/// `--quick`: a plain single-threaded loop over the mix. The workload and its floor run in alternating rounds after a
/// shared warm-up, so both see the same machine (other processes, clock, thermal state) and their ratio is what carries
/// to another machine.
/// </summary>
public static class Quick
{
    public sealed record Figures(double EventsPerSecond, double BytesPerEvent);

    /// <summary>Runs <paramref name="workload"/> and <paramref name="floor"/> alternately for <paramref name="rounds"/>
    /// rounds each and returns events/s and bytes allocated per event for both.</summary>
    public static (Figures Workload, Figures Floor) Compare(int eventsPerRound, Func<long> workload, Func<long> floor, int rounds = 30, double warmUpSeconds = 3)
    {
        // Tiered JIT replaces first-tier code within a few seconds; measure after that.
        var warmUp = Stopwatch.StartNew();
        while (warmUp.Elapsed.TotalSeconds < warmUpSeconds)
        {
            workload();
            floor();
        }
        var workloadTime = TimeSpan.Zero;
        var floorTime = TimeSpan.Zero;
        long workloadBytes = 0;
        long floorBytes = 0;
        for (var i = 0; i < rounds; i++)
        {
            Measure(workload, ref workloadTime, ref workloadBytes);
            Measure(floor, ref floorTime, ref floorBytes);
        }
        double total = (double)rounds * eventsPerRound;
        return (new Figures(total / workloadTime.TotalSeconds, workloadBytes / total), new Figures(total / floorTime.TotalSeconds, floorBytes / total));
    }

    private static void Measure(Func<long> run, ref TimeSpan time, ref long allocated)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var start = Stopwatch.GetTimestamp();
        run();
        time += Stopwatch.GetElapsedTime(start);
        allocated += GC.GetAllocatedBytesForCurrentThread() - before;
    }
}
