using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Klaviyo.Functions.LoadRunner;
using Klaviyo.Functions.Tests.TestSupport;

// Load runs of local mode over loopback with the standard mix (../shared/bench/event-mix.jsonl).
//   ingest   [--seconds N] [--concurrency C] [--open-rate R] [--baseline DLL] : closed-loop max accepted rate (batches of
//                                               100, each post with fresh messageIds so duplicate detection drops none),
//                                               then p50/p99 at half that rate (or only the open loop at R events/s); with
//                                               --baseline the same phases against another build (e.g. the in-memory
//                                               queue) in the same run
//   --set Name=Value (repeatable, any mode): an extra app setting, e.g. --set Local__Concurrency=1
//   --warmup S (ingest): the open loop first runs S seconds at the same rate unmeasured (JIT, thread pool, caches), so
//                        the percentiles are of the steady state; default 0 (a cold app, as in the earlier figures)
//   delivery [--seconds N] [--rate R] [--processes P] [--drain S] : offers R events/s (posts of 100,
//                                               fresh messageIds per pass over the mix) to P local apps sharing one fake
//                                               enforcing Klaviyo's limits, waits up to S s for the backlog to drain, then
//                                               reports delivered events/s, per-endpoint calls/items/429s, calls per 1,000
//                                               events, exact accounting, peak RSS, and the fake's own capacity as floor
//   --hang-after S --hang-for H (delivery): from S s after start, every Klaviyo call hangs for H s (then healthy), and the
//                                               end state of every message is read from the databases: delivered,
//                                               dead-lettered by reason, still queued, parked with or without a tracker;
//                                               --fail-subscriptions-for F: after the hang, subscription jobs to LIST2 (the
//                                               mix's group list) answer 503 F s more
//   --throttle-after S --throttle-for T (delivery): from S s after start, every Klaviyo call is answered 429 with
//                                               Retry-After: 1 (--throttle-retry-after R) for T s; the status lines carry
//                                               each app's CPU seconds so far
//   latency  [--events N] : N lone events per kind (track, identify) posted one at a time to an idle
//                                               app; p50/p95 from the post to the fake's receipt, beside a direct post
var mode = args.FirstOrDefault() ?? "ingest";
var seconds = IntArg("--seconds", mode == "delivery" ? 180 : 20);
var concurrency = IntArg("--concurrency", 8);
var rate = IntArg("--rate", 1000);

var events = LoadMix();
var batches = events.Chunk(100).Select(chunk => new Batch(Encoding.UTF8.GetBytes("[" + string.Join(",", chunk) + "]"))).ToArray();
var baseline = args.SkipWhile(a => a != "--baseline").Skip(1).FirstOrDefault();
Console.WriteLine($"mix: {events.Length} events, {batches.Length} batches of 100");

await using var fake = await FakeKlaviyo.StartAsync(new FakeKlaviyoOptions
{
    EnforceLimits = mode is "delivery" or "latency",
    HangAfter = TimeSpan.FromSeconds(IntArg("--hang-after", 0)),
    HangFor = TimeSpan.FromSeconds(IntArg("--hang-for", 0)),
    FailSubscriptionsFor = TimeSpan.FromSeconds(IntArg("--fail-subscriptions-for", 0)),
    ThrottleAfter = TimeSpan.FromSeconds(IntArg("--throttle-after", 0)),
    ThrottleFor = TimeSpan.FromSeconds(IntArg("--throttle-for", 0)),
    ThrottleRetryAfter = IntArg("--throttle-retry-after", 1),
});
var settings = new Dictionary<string, string>
{
    ["Klaviyo__PrivateApiKey"] = "pk_load_runner",
    ["Klaviyo__BaseUrl"] = fake.BaseUrl,
    ["Klaviyo__ListId"] = "LIST1",
    ["Klaviyo__SendPageAsTrack"] = "true",
    ["Klaviyo__AdditionalPageInfo"] = "true",
    ["Local__DeadLetterPath"] = Path.Combine(Path.GetTempPath(), $"load-dead-letters-{Environment.ProcessId}.jsonl"),
    ["Local__DatabasePath"] = Path.Combine(Path.GetTempPath(), $"load-relay-{Environment.ProcessId}.db"),
    ["Logging__LogLevel__Default"] = "Warning",
    ["Logging__LogLevel__Klaviyo.Functions.Local"] = "Information",
};
for (var i = 0; i < args.Length - 1; i++)
{
    if (args[i] == "--set" && args[i + 1].Split('=', 2) is [var name, var value])
    {
        settings[name] = value;
    }
}
if (mode == "ingest")
{
    foreach (var (label, dll) in new[] { ("this build (SQLite queue)", (string?)null), ("baseline " + baseline, baseline) }.Where(t => t.Item1 == "this build (SQLite queue)" || baseline is not null))
    {
        Environment.SetEnvironmentVariable("KLAVIYO_APP_DLL", dll);
        Console.WriteLine($"== {label}");
        await IngestPhases(settings, batches, concurrency, seconds, IntArg("--open-rate", 0), IntArg("--warmup", 0));
    }
}
else if (mode == "latency")
{
    await Delivery.LatencyAsync(fake, settings, events, IntArg("--events", 50));
}
else
{
    await Delivery.RunAsync(fake, settings, batches, rate, TimeSpan.FromSeconds(seconds), IntArg("--processes", 1), TimeSpan.FromSeconds(IntArg("--drain", 300)));
}

// Each phase gets a fresh app and database, so the second does not inherit the first one's backlog.
static async Task IngestPhases(Dictionary<string, string> settings, Batch[] batches, int concurrency, int seconds, int openRate, int warmup)
{
    double acceptedPerSecond = 0;
    settings["Local__DatabasePath"] = Path.Combine(Path.GetTempPath(), $"load-relay-{Environment.ProcessId}-{Guid.NewGuid():N}.db");
    if (openRate <= 0)
    {
        await using var app = await LocalAppProcess.StartAsync(settings);
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        var closed = await ClosedLoop(http, batches, concurrency, TimeSpan.FromSeconds(seconds));
        acceptedPerSecond = closed.Accepted / closed.Elapsed.TotalSeconds;
        Console.WriteLine($"ingest closed loop: {acceptedPerSecond:N0} events/s accepted ({closed.Accepted:N0} events, {closed.Failed} failed requests, concurrency {concurrency}, {closed.Elapsed.TotalSeconds:N1} s); p50 {P(closed.Latencies, 50):N1} ms, p99 {P(closed.Latencies, 99):N1} ms; app RSS {app.ResidentMegabytes():N0} MB");
    }
    var half = openRate > 0 ? openRate : acceptedPerSecond / 2;
    settings["Local__DatabasePath"] = Path.Combine(Path.GetTempPath(), $"load-relay-{Environment.ProcessId}-{Guid.NewGuid():N}.db");
    await using (var app = await LocalAppProcess.StartAsync(settings))
    {
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        var warm = warmup > 0 ? await OpenLoop(http, batches, half / 100, TimeSpan.FromSeconds(warmup), 0) : null;
        var open = await OpenLoop(http, batches, half / 100, TimeSpan.FromSeconds(seconds), warm?.Latencies.Count ?? 0);
        Console.WriteLine($"ingest open loop at {half:N0} events/s (app pid {app.ProcessId}{(warm is null ? "" : $", after {warmup} s warm-up: p99 {P(warm.Latencies, 99):N1} ms")}): p50 {P(open.Latencies, 50):N1} ms, p99 {P(open.Latencies, 99):N1} ms, p99.9 {P(open.Latencies, 99.9):N1} ms, max {open.Latencies.Max():N1} ms, {open.Latencies.Count(l => l > 50)} of {open.Latencies.Count} over 50 ms ({open.Accepted:N0} accepted, {open.Failed} failed requests); app RSS {app.ResidentMegabytes():N0} MB");
    }
}

static async Task<Run> ClosedLoop(HttpClient http, Batch[] batches, int concurrency, TimeSpan duration)
{
    var run = new Run();
    var watch = Stopwatch.StartNew();
    var next = -1;
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
    {
        while (watch.Elapsed < duration)
        {
            var index = Interlocked.Increment(ref next) & int.MaxValue;
            await Post(http, batches[index % batches.Length].Copy(index / batches.Length), run);
        }
    }));
    run.Elapsed = watch.Elapsed;
    return run;
}

static async Task<Run> OpenLoop(HttpClient http, Batch[] batches, double batchesPerSecond, TimeSpan duration, int firstBatch)
{
    var run = new Run();
    var watch = Stopwatch.StartNew();
    var inFlight = new List<Task>();
    for (var i = 0; watch.Elapsed < duration; i++)
    {
        var due = TimeSpan.FromSeconds(i / batchesPerSecond);
        if (due > watch.Elapsed)
        {
            await Task.Delay(due - watch.Elapsed);
        }
        var n = firstBatch + i;
        inFlight.Add(Post(http, batches[n % batches.Length].Copy(n / batches.Length), run));
    }
    await Task.WhenAll(inFlight);
    run.Elapsed = watch.Elapsed;
    return run;
}

static async Task Post(HttpClient http, byte[] body, Run run)
{
    using var content = new ByteArrayContent(body);
    content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
    var start = Stopwatch.GetTimestamp();
    using var response = await http.PostAsync("/api/events", content);
    var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    if ((int)response.StatusCode == 202)
    {
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
        Interlocked.Add(ref run.Accepted, doc.RootElement.GetProperty("accepted").GetInt32());
    }
    else
    {
        Interlocked.Increment(ref run.Failed);
    }
    lock (run.Latencies)
    {
        run.Latencies.Add(elapsed);
    }
}

static double P(List<double> values, double percentile)
{
    if (values.Count == 0)
    {
        return double.NaN;
    }
    var sorted = values.OrderBy(v => v).ToList();
    return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(percentile / 100.0 * sorted.Count) - 1)];
}

static string[] LoadMix()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        var candidate = Path.Combine(dir.FullName, "shared", "bench", "event-mix.jsonl");
        if (File.Exists(candidate))
        {
            return File.ReadLines(candidate).Where(l => l.Length > 0).ToArray();
        }
    }
    throw new FileNotFoundException("shared/bench/event-mix.jsonl");
}

int IntArg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
}

sealed class Run
{
    public long Accepted;
    public long Failed;
    public TimeSpan Elapsed;
    public readonly List<double> Latencies = [];
}

/// <summary>A batch of the mix whose messageIds (<c>mix-N</c>) get a per-round tag of the same length
/// (<c>r07-N</c>), so every post carries new events and duplicate detection drops none.</summary>
sealed class Batch(byte[] body)
{
    private static readonly byte[] Marker = Encoding.UTF8.GetBytes("\"messageId\":\"mix-");
    private readonly int[] _offsets = Offsets(body);

    public byte[] Copy(int round)
    {
        var copy = (byte[])body.Clone();
        var tag = Encoding.ASCII.GetBytes(Base36(round % (36 * 36 * 36)).PadLeft(3, '0'));
        foreach (var offset in _offsets)
        {
            tag.CopyTo(copy, offset);
        }
        return copy;
    }

    private static int[] Offsets(byte[] body)
    {
        var offsets = new List<int>();
        for (var at = body.AsSpan().IndexOf(Marker); at >= 0;)
        {
            var start = at + Marker.Length - 4; // the "mix" of "mix-"
            offsets.Add(start);
            var next = body.AsSpan(start + 4).IndexOf(Marker);
            at = next < 0 ? -1 : start + 4 + next;
        }
        return [.. offsets];
    }

    private static string Base36(int value)
    {
        const string digits = "0123456789abcdefghijklmnopqrstuvwxyz";
        var text = "";
        do
        {
            text = digits[value % 36] + text;
            value /= 36;
        } while (value > 0);
        return text;
    }
}
