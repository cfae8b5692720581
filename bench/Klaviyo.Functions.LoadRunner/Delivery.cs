using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.LoadRunner;

/// <summary>The delivery and latency runs: local apps relaying to the limit-enforcing fake, with exact accounting.</summary>
internal static partial class Delivery
{
    /// <summary>The app's stop summary (<c>LocalCounters.Summary</c>).</summary>
    [GeneratedRegex(@"Local relay stopped: (\d+) delivered, (\d+) skipped, (\d+) dead-lettered, (\d+) still queued")]
    private static partial Regex SummaryLine();

    public static async Task RunAsync(FakeKlaviyo fake, Dictionary<string, string> settings, Batch[] batches, int rate, TimeSpan duration, int processes, TimeSpan drainBound)
    {
        var apps = new List<LocalAppProcess>();
        var databases = new List<string>();
        try
        {
            for (var p = 0; p < processes; p++)
            {
                var own = OwnFiles(settings);
                databases.Add(own["Local__DatabasePath"]);
                apps.Add(await LocalAppProcess.StartAsync(own));
            }
            var clients = apps.Select(a => new HttpClient { BaseAddress = new Uri(a.BaseUrl) }).ToArray();
            Console.WriteLine($"delivery: {rate:N0} events/s for {duration.TotalSeconds:N0} s to {processes} app(s) (pids {string.Join(", ", apps.Select(a => a.ProcessId))}); "
                + $"settings: {string.Join(", ", settings.Where(s => s.Key.StartsWith("Local__", StringComparison.Ordinal) || s.Key.StartsWith("Relay__", StringComparison.Ordinal)).Where(s => !s.Key.EndsWith("Path", StringComparison.Ordinal)).Select(s => s.Key + "=" + s.Value))}");

            var peakRss = new double[apps.Count];
            using var sampling = new CancellationTokenSource();
            var run = new Run();
            var watch = Stopwatch.StartNew();
            var sampler = SampleAsync(apps, clients, fake, run, watch, peakRss, sampling.Token);

            await OfferAsync(clients, batches, rate, duration, run);
            var offerElapsed = watch.Elapsed;
            var atOfferEnd = await BacklogAsync(clients);
            var drainWatch = Stopwatch.StartNew();
            var backlog = atOfferEnd;
            while (backlog.Waiting > 0 && drainWatch.Elapsed < drainBound)
            {
                await Task.Delay(500);
                backlog = await BacklogAsync(clients);
            }
            var drain = drainWatch.Elapsed;
            var total = watch.Elapsed;
            await sampling.CancelAsync();
            await sampler;

            var summaries = new List<long[]>();
            foreach (var app in apps)
            {
                var stopping = Stopwatch.StartNew();
                var exitCode = await app.StopAsync(TimeSpan.FromSeconds(60));
                var log = Path.Combine(Path.GetTempPath(), $"load-app-{app.ProcessId}.log");
                await File.WriteAllTextAsync(log, app.Output);
                Console.WriteLine($"  app {app.ProcessId}: stopped with exit code {exitCode} after {stopping.Elapsed.TotalSeconds:N1} s: {SummaryTail(app.Output)} (its output: {log})");
                var match = SummaryLine().Matches(app.Output).LastOrDefault();
                summaries.Add(match is null ? [0, 0, 0, 0] : [.. match.Groups.Cast<Group>().Skip(1).Select(g => long.Parse(g.Value, CultureInfo.InvariantCulture))]);
                if (match is null)
                {
                    Console.WriteLine($"  app {app.ProcessId}: no summary line; its output ends:\n{Tail(app.Output, 20)}");
                }
            }
            var (delivered, skipped, dead, queued) = (summaries.Sum(s => s[0]), summaries.Sum(s => s[1]), summaries.Sum(s => s[2]), summaries.Sum(s => s[3]));

            Console.WriteLine();
            Console.WriteLine($"offered {run.Accepted:N0} events (202 answers' accepted; {run.Failed} failed posts) in {offerElapsed.TotalSeconds:N1} s = {run.Accepted / offerElapsed.TotalSeconds:N0}/s; "
                + $"at the end of the offer {atOfferEnd.Waiting:N0} waiting ({atOfferEnd})");
            Console.WriteLine($"drain: {(backlog.Waiting == 0 ? "backlog empty" : $"NOT drained, {backlog.Waiting:N0} still waiting ({backlog})")} after {drain.TotalSeconds:N1} s");
            Console.WriteLine($"settled during the offer: {(run.Accepted - atOfferEnd.Waiting) / offerElapsed.TotalSeconds:N0} events/s; delivered+skipped over offer and drain: {(delivered + skipped) / total.TotalSeconds:N0} events/s ({total.TotalSeconds:N1} s)");
            var sum = delivered + skipped + dead + queued;
            Console.WriteLine($"accounting: offered {run.Accepted:N0} {(sum == run.Accepted ? "=" : "≠")} {delivered:N0} delivered + {skipped:N0} skipped + {dead:N0} dead-lettered + {queued:N0} still queued"
                + (sum == run.Accepted ? " (exact)" : $" = {sum:N0} (off by {sum - run.Accepted:N0})") + $"; dead letters in the databases at the end: {backlog.DeadLettered:N0}");
            Console.WriteLine($"app peak RSS: {string.Join(", ", peakRss.Select(r => $"{r:N0} MB"))}");
            if (fake.Hung > 0)
            {
                Console.WriteLine($"Klaviyo hung {fake.Hung:N0} call(s) in its window");
            }
            foreach (var database in databases)
            {
                Console.WriteLine(EndState(database));
            }

            PrintEndpoints(fake, run.Accepted);
            await FloorAsync(fake.Samples, (delivered + skipped) / total.TotalSeconds);
        }
        finally
        {
            foreach (var app in apps)
            {
                await app.DisposeAsync();
            }
        }
    }

    /// <summary>Every message's end state as the stopped app's database holds it: dead letters by reason, what is still
    /// queued, and every parked (deferred) event checked against the sequence numbers the waiting trackers carry.</summary>
    private static string EndState(string database)
    {
        using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
        db.Open();
        List<(long, string)> Rows(string sql)
        {
            using var command = new Microsoft.Data.Sqlite.SqliteCommand(sql, db);
            using var reader = command.ExecuteReader();
            var rows = new List<(long, string)>();
            while (reader.Read())
            {
                rows.Add((reader.GetInt64(0), reader.IsDBNull(1) ? "" : Convert.ToString(reader.GetValue(1), CultureInfo.InvariantCulture)!));
            }
            return rows;
        }
        var dead = Rows("SELECT COUNT(*), reason FROM messages WHERE state = 3 GROUP BY reason");
        var waiting = Rows("SELECT COUNT(*), subject = 'import-job' FROM messages WHERE state IN (0, 1) GROUP BY 2");
        var parked = Rows("SELECT id, '' FROM messages WHERE state = 2").Select(r => r.Item1).ToHashSet();
        var tracked = new HashSet<long>();
        using (var command = new Microsoft.Data.Sqlite.SqliteCommand("SELECT body FROM messages WHERE subject = 'import-job' AND state IN (0, 1)", db))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                foreach (var item in JsonNode.Parse((byte[])reader.GetValue(0))?["items"]?.AsArray() ?? [])
                {
                    foreach (var sequence in item?["sequences"]?.AsArray() ?? [])
                    {
                        tracked.Add(sequence!.GetValue<long>());
                    }
                }
            }
        }
        var orphans = parked.Count(p => !tracked.Contains(p));
        return $"end state of {Path.GetFileName(database)}: dead-lettered {dead.Sum(d => d.Item1):N0} ({string.Join(", ", dead.Select(d => $"{d.Item2} {d.Item1:N0}"))}); "
            + $"still queued: {waiting.Where(w => w.Item2 == "0").Sum(w => w.Item1):N0} events and {waiting.Where(w => w.Item2 == "1").Sum(w => w.Item1):N0} tracker(s) waiting or leased, "
            + $"{parked.Count:N0} parked ({parked.Count - orphans:N0} named by a waiting tracker, {orphans:N0} by none)";
    }

    private static Dictionary<string, string> OwnFiles(Dictionary<string, string> settings)
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        return new Dictionary<string, string>(settings)
        {
            ["Local__DatabasePath"] = Path.Combine(Path.GetTempPath(), $"load-relay-{Environment.ProcessId}-{id}.db"),
            ["Local__DeadLetterPath"] = Path.Combine(Path.GetTempPath(), $"load-dead-letters-{Environment.ProcessId}-{id}.jsonl"),
        };
    }

    /// <summary>Posts of 100 at <paramref name="rate"/> events/s, round-robin over the apps; every pass over the mix
    /// carries new messageIds, so duplicate detection drops none.</summary>
    private static async Task OfferAsync(HttpClient[] clients, Batch[] batches, int rate, TimeSpan duration, Run run)
    {
        var watch = Stopwatch.StartNew();
        var perSecond = rate / 100.0;
        var inFlight = new List<Task>();
        for (var i = 0; watch.Elapsed < duration; i++)
        {
            var due = TimeSpan.FromSeconds(i / perSecond);
            if (due > watch.Elapsed)
            {
                await Task.Delay(due - watch.Elapsed);
            }
            inFlight.Add(PostAsync(clients[i % clients.Length], batches[i % batches.Length].Copy(i / batches.Length), run));
        }
        await Task.WhenAll(inFlight);
    }

    private static async Task<TimeSpan> PostAsync(HttpClient http, byte[] body, Run run, string path = "/api/events", string contentType = "application/json")
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        var start = Stopwatch.GetTimestamp();
        using var response = await http.PostAsync(path, content);
        var elapsed = Stopwatch.GetElapsedTime(start);
        if ((int)response.StatusCode == 202 && contentType == "application/json")
        {
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
            Interlocked.Add(ref run.Accepted, doc.RootElement.GetProperty("accepted").GetInt32());
        }
        else if (!response.IsSuccessStatusCode)
        {
            Interlocked.Increment(ref run.Failed);
        }
        return elapsed;
    }

    internal sealed record Backlog(long Ready, long Scheduled, long Leased, long Deferred, long DeadLettered)
    {
        public long Waiting => Ready + Scheduled + Leased + Deferred;

        public override string ToString() => $"ready {Ready:N0}, scheduled {Scheduled:N0}, leased {Leased:N0}, deferred {Deferred:N0}";
    }

    /// <summary>The backlog summed over the apps, from <c>GET /api/health</c>.</summary>
    private static async Task<Backlog> BacklogAsync(HttpClient[] clients)
    {
        var sum = new long[5];
        foreach (var http in clients)
        {
            using var response = await http.GetAsync("/api/health");
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
            var backlog = doc.RootElement.GetProperty("backlog");
            string[] names = ["ready", "scheduled", "leased", "deferred", "deadLettered"];
            for (var k = 0; k < names.Length; k++)
            {
                sum[k] += backlog.GetProperty(names[k]).GetInt64();
            }
        }
        return new Backlog(sum[0], sum[1], sum[2], sum[3], sum[4]);
    }

    /// <summary>Every second the apps' RSS (peak kept); every 15 s a progress line.</summary>
    private static async Task SampleAsync(List<LocalAppProcess> apps, HttpClient[] clients, FakeKlaviyo fake, Run run, Stopwatch watch, double[] peakRss, CancellationToken cancellationToken)
    {
        var tick = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(1000, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            for (var k = 0; k < apps.Count; k++)
            {
                try
                {
                    peakRss[k] = Math.Max(peakRss[k], apps[k].ResidentMegabytes());
                }
                catch (IOException)
                {
                }
            }
            if (++tick % 15 == 0)
            {
                var backlog = await BacklogAsync(clients);
                var calls = fake.Counters.Values.Sum(c => c.AcceptedCount + c.ThrottledCount);
                var throttled = fake.Counters.Values.Sum(c => c.ThrottledCount);
                Console.WriteLine($"  {watch.Elapsed.TotalSeconds,5:N0} s: offered {Interlocked.Read(ref run.Accepted),9:N0}, waiting {backlog.Waiting,7:N0} ({backlog}), dead {backlog.DeadLettered:N0}; "
                    + $"Klaviyo calls {calls:N0} ({throttled:N0} 429); RSS {string.Join("/", apps.Select(a => { try { return a.ResidentMegabytes().ToString("N0", CultureInfo.InvariantCulture); } catch (IOException) { return "-"; } }))} MB; "
                    + $"CPU {string.Join("/", apps.Select(a => { try { return a.CpuSeconds().ToString("N1", CultureInfo.InvariantCulture); } catch (IOException) { return "-"; } }))} s");
            }
        }
    }

    private static void PrintEndpoints(FakeKlaviyo fake, long offered)
    {
        Console.WriteLine("Klaviyo (the fake) per endpoint: calls answered, of them 429, items carried by the accepted calls, per full minute vs the steady limit");
        foreach (var (group, counter) in fake.Counters.OrderBy(c => c.Key))
        {
            var minutes = counter.PerMinute();
            var full = minutes.Count > 2 ? minutes.Skip(1).Take(minutes.Count - 2).ToList() : [];
            var sustained = full.Count > 0 ? full.Average() : double.NaN;
            var total = counter.AcceptedCount + counter.ThrottledCount;
            Console.WriteLine($"  {group,-19} calls {total,6:N0}, 429 {counter.ThrottledCount,5:N0} ({100.0 * counter.ThrottledCount / Math.Max(1, total):N2} %; {counter.ThrottledSteadyCount} by the minute window), "
                + $"items {counter.ItemCount,9:N0} ({(double)counter.ItemCount / Math.Max(1, counter.AcceptedCount):N1}/call), per minute [{string.Join(", ", minutes)}], "
                + $"full-minute mean {sustained:N1} = {100 * sustained / counter.Steady:N1} % of steady {counter.Steady}/min");
        }
        var calls = fake.Counters.Values.Sum(c => c.AcceptedCount + c.ThrottledCount);
        var throttled = fake.Counters.Values.Sum(c => c.ThrottledCount);
        Console.WriteLine($"Klaviyo calls: {calls:N0} answered, {throttled:N0} of them 429 = {100.0 * throttled / Math.Max(1, calls):N3} %; "
            + $"calls per 1,000 events offered: {1000.0 * calls / Math.Max(1, offered):N2} (job status and import-error reads included)");
    }

    /// <summary>The floor: the same bodies the relay sent, posted by 8 bare senders straight to a fake without limits
    /// for 10 s, in items (events, profiles, members) carried per second: the fake's own capacity on this machine.</summary>
    private static async Task FloorAsync(IReadOnlyList<(string Path, byte[] Body)> samples, double relayPerSecond)
    {
        if (samples.Count == 0)
        {
            return;
        }
        await using var bare = await FakeKlaviyo.StartAsync(enforceLimits: false);
        using var http = new HttpClient { BaseAddress = new Uri(bare.BaseUrl) };
        var run = new Run();
        var watch = Stopwatch.StartNew();
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            while (watch.Elapsed < TimeSpan.FromSeconds(10))
            {
                var (path, body) = samples[(Interlocked.Increment(ref next) & int.MaxValue) % samples.Count];
                await PostAsync(http, body, run, path, "application/vnd.api+json");
            }
        }));
        var elapsed = watch.Elapsed.TotalSeconds;
        var items = bare.Counters.Values.Sum(c => c.ItemCount);
        var calls = bare.Counters.Values.Sum(c => c.AcceptedCount);
        Console.WriteLine($"floor (the fake's capacity): {samples.Count} of the relay's own bodies ({string.Join(", ", samples.GroupBy(s => s.Path).Select(g => $"{g.Count()} {g.Key}"))}) "
            + $"posted by 8 bare senders for {elapsed:N1} s: {calls / elapsed:N0} calls/s carrying {items / elapsed:N0} items/s; "
            + $"the relay's delivered rate is {relayPerSecond / (items / elapsed):N3} of it");
    }

    /// <summary>Lone events on an idle app: from the post to the first Klaviyo call carrying the event, one at a time.</summary>
    public static async Task LatencyAsync(FakeKlaviyo fake, Dictionary<string, string> settings, string[] mix, int count)
    {
        await using var app = await LocalAppProcess.StartAsync(OwnFiles(settings));
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        using var direct = new HttpClient { BaseAddress = new Uri(fake.BaseUrl) };
        Console.WriteLine($"latency: {count} lone events per kind, one at a time, 500 ms apart; settings: {string.Join(", ", settings.Where(s => s.Key.StartsWith("Local__", StringComparison.Ordinal) && !s.Key.EndsWith("Path", StringComparison.Ordinal)).Select(s => s.Key + "=" + s.Value))}");
        foreach (var (kind, path) in new[] { ("track", "/api/events"), ("identify", "/api/profile-import") })
        {
            var template = mix.First(e => JsonNode.Parse(e)!["type"]!.GetValue<string>() == kind);
            var latencies = new List<double>();
            var failed = 0;
            for (var i = 0; i < count; i++)
            {
                var token = $"lat-{kind}-{Guid.NewGuid():N}";
                var node = JsonNode.Parse(template)!;
                node["messageId"] = token;
                node["userId"] = token;
                var receipt = fake.WaitForReceiptAsync(token, TimeSpan.FromSeconds(30));
                var posted = DateTimeOffset.UtcNow;
                await PostAsync(http, Encoding.UTF8.GetBytes("[" + node.ToJsonString() + "]"), new Run());
                try
                {
                    latencies.Add(((await receipt) - posted).TotalMilliseconds);
                }
                catch (TimeoutException)
                {
                    failed++;
                }
                await Task.Delay(500); // settled and idle again before the next
            }
            var sample = fake.Samples.FirstOrDefault(s => s.Path == path).Body;
            var floor = new List<double>();
            for (var i = 0; sample is not null && i < count; i++)
            {
                floor.Add((await PostAsync(direct, sample, new Run(), path, "application/vnd.api+json")).TotalMilliseconds);
                await Task.Delay(20);
            }
            Console.WriteLine($"  {kind,-8}: post → first Klaviyo call carrying it ({path}): p50 {P(latencies, 50):N0} ms, p95 {P(latencies, 95):N0} ms, max {P(latencies, 100):N0} ms "
                + $"({latencies.Count} received, {failed} not within 30 s); floor, the same Klaviyo body posted straight to the fake: p50 {P(floor, 50):N1} ms, p95 {P(floor, 95):N1} ms");
        }
        await app.StopAsync(TimeSpan.FromSeconds(30));
        Console.WriteLine("  app: " + (SummaryLine().Match(app.Output) is { Success: true } m ? m.Value : "(no summary line)"));
    }

    private static double P(List<double> values, int percentile)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(percentile / 100.0 * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    private static string SummaryTail(string output) =>
        output.Split('\n').LastOrDefault(l => l.Contains("Local relay stopped", StringComparison.Ordinal))?.Trim() ?? "(no summary line)";

    private static string Tail(string text, int lines) => string.Join('\n', text.Split('\n').TakeLast(lines));
}
