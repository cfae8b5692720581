using BenchmarkDotNet.Running;
using Klaviyo.Functions.Benchmarks;
using Klaviyo.Functions.Transform;

// `--quick`: a plain single-threaded loop over the mix beside its floor (System.Text.Json parse + write), with the ratio.
// `--plan`: bulk planning of a 1,000-event batch of the mix beside the same floor, per batch.
// `--ingest`: the ingest over HTTP beside a bare Kestrel + JsonDocument floor, with the ratio (see IngestBenchmark).
// `--by-type`: the transform per event type (see ByType). Anything else goes to BenchmarkDotNet (for example `--filter *Transform*`).
if (args.Contains("--quick"))
{
    var events = EventMix.Load();
    var transformer = new KlaviyoTransformer(EventMix.Settings());
    var (transform, floor) = Quick.Compare(events.Length, () => TransformBenchmarks.TransformAll(transformer, events), () => JsonFloor.ParseAndWriteAll(events));
    Console.WriteLine($"floor (System.Text.Json parse + write): {floor.EventsPerSecond:N0} events/s on one thread, {floor.BytesPerEvent:N0} bytes allocated per event");
    Console.WriteLine($"transform (every request body built):   {transform.EventsPerSecond:N0} events/s on one thread, {transform.BytesPerEvent:N0} bytes allocated per event");
    Console.WriteLine($"transform / floor: {transform.EventsPerSecond / floor.EventsPerSecond:N2} ({30 * events.Length:N0} events each, alternating rounds, {Environment.ProcessorCount} cores, .NET {Environment.Version})");
    if (args.Contains("--parts"))
    {
        var (parts, floor2) = Quick.Compare(events.Length, () => TransformBenchmarks.TransformToParts(transformer, events), () => JsonFloor.ParseAndWriteAll(events));
        Console.WriteLine($"transform to parts only (the batch path): {parts.EventsPerSecond:N0} events/s, {parts.BytesPerEvent:N0} bytes per event; floor {floor2.EventsPerSecond:N0} events/s, {floor2.BytesPerEvent:N0} bytes; parts / floor: {parts.EventsPerSecond / floor2.EventsPerSecond:N2}");
    }
    return;
}

if (args.Contains("--plan"))
{
    var (batch, messages, planner) = PlanningBenchmarks.Create();
    var (plan, floor) = Quick.Compare(batch.Length, () => PlanningBenchmarks.PlanOnce(planner, messages), () => JsonFloor.ParseAndWriteAll(batch), rounds: 200);
    Console.WriteLine($"floor (System.Text.Json parse + write of the batch's events): {1000 * batch.Length / floor.EventsPerSecond:N2} ms and {floor.BytesPerEvent * batch.Length / 1024:N0} KB per {batch.Length:N0}-event batch");
    Console.WriteLine($"bulk planning (transform + pack every bulk call):             {1000 * batch.Length / plan.EventsPerSecond:N2} ms and {plan.BytesPerEvent * batch.Length / 1024:N0} KB per {batch.Length:N0}-event batch");
    Console.WriteLine($"planning / floor: time {floor.EventsPerSecond / plan.EventsPerSecond:N2}x, allocation {plan.BytesPerEvent / floor.BytesPerEvent:N2}x (200 alternating rounds, {Environment.ProcessorCount} cores, .NET {Environment.Version})");
    return;
}

if (args.Contains("--ingest"))
{
    await IngestBenchmark.RunAsync(secondsPerPhase: Arg("--seconds", 2), rounds: (int)Arg("--rounds", 10), concurrency: (int)Arg("--concurrency", 8));
    return;
}

if (args.Contains("--by-type"))
{
    ByType.Run();
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(TransformBenchmarks).Assembly).Run(args);

double Arg(string name, double fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
}
