using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>
/// Local mode's durable queue from the outside (spec section 9): the built app as a child process killed with
/// <c>kill -9</c> and started again on the same database, a full backlog, the keys, and a database that cannot be opened.
/// </summary>
[TestClass]
public sealed class LocalDurabilityTests
{
    private const string Key = "pk_e2e_durable_key";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task LocalMode_KilledWhileKlaviyoHoldsEvents_RestartDeliversEveryAcceptedEventWithoutWaitingOutTheLease()
    {
        const int count = 300;
        var database = TempPath(".db");
        var accepted = new List<string>();
        List<ReceivedRequest> beforeKill;
        // The default lease (2 min, like the Azure lock): the restart must not wait it out.
        // The first 100 are delivered and settled; then Klaviyo holds each call for 5 s and the process is killed while
        // it holds the other 200 (batches of 100 tracks go in event bulk calls).
        using (var slow = FakeKlaviyo.Start().Answer("/api/event-bulk-create-jobs", 202).Answer("/api/events", 202))
        {
            var app = await StartAsync(slow.BaseUrl, database);
            for (var batch = 0; batch < count / 100; batch++)
            {
                if (batch == 1)
                {
                    await WaitForHealthAsync(app, backlog => (int)backlog["ready"]! + (int)backlog["leased"]! + (int)backlog["scheduled"]! == 0);
                    slow.Server.ResetMappings();
                    slow.Answer("/api/event-bulk-create-jobs", 202, delay: TimeSpan.FromSeconds(5)).Answer("/api/events", 202, delay: TimeSpan.FromSeconds(5));
                }
                var ids = Enumerable.Range(batch * 100, 100).Select(i => $"crash-{i}").ToList();
                using var response = await PostAsync(app, "/api/events", "[" + string.Join(",", ids.Select(Track)) + "]");
                Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode);
                accepted.AddRange(ids);
            }
            await WaitForHealthAsync(app, backlog => (int)backlog["ready"]! == 0 && (int)backlog["leased"]! > 0);
            await Task.Delay(TimeSpan.FromSeconds(1), TestContext.CancellationToken);
            await app.KillAsync();
            await app.DisposeAsync();
            beforeKill = [.. slow.Received];
        }
        var leasedAtKill = LeasedRows(database);
        var pendingAtKill = PendingIds(database);
        Assert.IsGreaterThan(0, leasedAtKill, "the kill cut deliveries off while their events were leased");

        using var klaviyo = FakeKlaviyo.Start().Answer("/api/event-bulk-create-jobs", 202).Answer("/api/events", 202);
        var restart = System.Diagnostics.Stopwatch.StartNew();
        await using var restarted = await StartAsync(klaviyo.BaseUrl, database);
        var deadline = DateTime.UtcNow + Patience;
        HashSet<string> Delivered() => [.. UniqueIds(beforeKill), .. UniqueIds(klaviyo.Received)];
        // Whatever was not settled at the kill (leased or waiting) is sent again, even if Klaviyo had it already.
        while ((Delivered().Count < count || !pendingAtKill.IsSubsetOf(UniqueIds(klaviyo.Received))) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, TestContext.CancellationToken);
        }
        var drained = restart.Elapsed;

        Assert.AreSequenceEqual(accepted.Order(StringComparer.Ordinal), Delivered().Order(StringComparer.Ordinal), "every accepted event is delivered, before the kill or after the restart");
        CollectionAssert.IsSubsetOf(pendingAtKill.ToList(), UniqueIds(klaviyo.Received).ToList(), "every event still in the database at the kill is delivered after the restart");
        Assert.Contains($"{leasedAtKill} event(s) leased by a previous relay process", restarted.Output, "the leases of the killed process are released at open");
        Assert.IsLessThan(TimeSpan.FromSeconds(60), drained, "drained long before the 2-min lease would have lapsed");
        var before = EventUniqueIds(beforeKill);
        var after = EventUniqueIds(klaviyo.Received);
        var duplicates = before.Count + after.Count - before.Concat(after).Distinct().Count();
        Console.WriteLine($"kill -9: {count} accepted, {before.Count} answered by Klaviyo before the kill ({beforeKill.Count} calls), {leasedAtKill} leased at the kill, {after.Count} delivered after the restart in {drained.TotalSeconds:N1} s ({klaviyo.Received.Count} calls; start-up included; lease 2 min); {duplicates} duplicate deliveries (in flight at the kill; unique_id makes them harmless)");
        Assert.IsLessThanOrEqualTo(leasedAtKill, duplicates, "duplicates only where a delivery was in flight: of events leased at the kill");
        Assert.AreEqual(0, await restarted.StopAsync(Patience));
        Assert.MatchesRegex($"(?<![0-9]){after.Count} delivered, 0 skipped, 0 dead-lettered, 0 still queued", restarted.Output);
    }

    [TestMethod]
    public async Task LocalMode_SecondProcessOnTheSameDatabase_RefusesToStartNamingTheSetting()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        var database = TempPath(".db");
        await using var owner = await StartAsync(klaviyo.BaseUrl, database);

        var failure = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => StartAsync(klaviyo.BaseUrl, database));

        Assert.Contains("Local__DatabasePath: another relay process holds", failure.Message);
        using (var response = await PostAsync(owner, "/api/events", Track("owner-1")))
        {
            Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode, "the owner keeps serving");
        }
        await klaviyo.WaitForReceivedAsync(1, TestContext.CancellationToken);
        Assert.AreSequenceEqual(["owner-1"], UniqueIds(klaviyo.Received));
        Assert.AreEqual(0, await owner.StopAsync(Patience));
        await using var next = await StartAsync(klaviyo.BaseUrl, database); // a stopped owner leaves the database to the next
    }

    [TestMethod]
    public async Task LocalMode_KlaviyoThrottlesForAMinuteUnderFullLoad_StaysFlatAnswers503AndDeliversEverythingAccepted()
    {
        const int maxBacklog = 1000;
        const int posters = 4;
        var throttled = TimeSpan.FromSeconds(60);
        // The standard mix with one id per event in every place that reaches Klaviyo (messageId, so unique_id, and userId,
        // so external_id), so each call Klaviyo receives names the event it carries.
        var templates = MixTemplates();
        // Klaviyo throttles everything for a minute and says so: Retry-After 65 s puts each event's retry just after the
        // minute (the relay's own schedule would retry at ~30 s, then ~2 min). The backlog is small because the relay paces
        // the mix's profile-import and list calls to Klaviyo's limits (75/s and 10/s bursts) after the pause: 1,000 events
        // drain in about a minute, 2,000 in about three.
        using var klaviyo = FakeKlaviyo.Start();
        var throttle = Guid.NewGuid();
        klaviyo.Server.Given(WireMock.RequestBuilders.Request.Create().WithPath("/api/*").UsingPost()).WithGuid(throttle)
            .RespondWith(WireMock.ResponseBuilders.Response.Create().WithStatusCode(429).WithHeader("Retry-After", "65")
                .WithHeader("Content-Type", "application/vnd.api+json").WithBody(FakeKlaviyo.ErrorAnswer(429, "throttled", "Request was throttled.", null)));
        await using var app = await StartAsync(klaviyo.BaseUrl, TempPath(".db"), new()
        {
            ["Local__MaxBacklog"] = maxBacklog.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Klaviyo__ListId"] = "LIST1",
            ["Klaviyo__SendPageAsTrack"] = "true",
            ["Klaviyo__AdditionalPageInfo"] = "true",
            ["Logging__LogLevel__Default"] = "Warning",
        });

        var accepted = new List<string>();
        var refused = new List<string>();
        var refusalsWithoutRetryAfter = 0;
        long refusedBytes = 0;
        var otherAnswers = new List<HttpStatusCode>();
        var rss = new List<double>();
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = posters }) { BaseAddress = new Uri(app.BaseUrl) };
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var sampler = Task.Run(async () =>
        {
            while (watch.Elapsed < throttled)
            {
                rss.Add(app.ResidentMegabytes());
                await Task.Delay(1000, TestContext.CancellationToken);
            }
        }, TestContext.CancellationToken);
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, posters).Select(_ => Task.Run(async () =>
        {
            while (watch.Elapsed < throttled)
            {
                var first = Interlocked.Add(ref next, 100) - 99;
                var ids = Enumerable.Range(first, 100).Select(i => $"bl-{i:D7}").ToList();
                var body = "[" + string.Join(",", ids.Select((id, i) => templates[(first + i) % templates.Count].Replace("@ID@", id, StringComparison.Ordinal))) + "]";
                using var response = await PostAsync(http, "/api/events", body);
                lock (accepted)
                {
                    if (response.StatusCode == HttpStatusCode.Accepted)
                    {
                        accepted.AddRange(ids);
                    }
                    else if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
                    {
                        refused.AddRange(ids);
                        refusedBytes += Encoding.UTF8.GetByteCount(body);
                        refusalsWithoutRetryAfter += response.Headers.RetryAfter is null ? 1 : 0;
                    }
                    else
                    {
                        otherAnswers.Add(response.StatusCode);
                    }
                }
            }
        }, TestContext.CancellationToken)));
        await sampler;

        Assert.IsEmpty(otherAnswers, "only 202 or 503 while the backlog is full");
        Assert.HasCount(maxBacklog, accepted, "accepted up to Local:MaxBacklog (whole requests of 100), then refused");
        Assert.IsGreaterThan(0, refused.Count, "the ingest answers 503 once the backlog is full");
        Assert.AreEqual(0, refusalsWithoutRetryAfter, "every 503 carries Retry-After");
        // Flat: after the first 10 s (start-up, JIT, the backlog filling), RSS moves within 48 MB for the rest of the
        // minute while the refused requests carry at least ten times that: keeping a tenth of what it refuses would show.
        var settled = rss.Skip(10).ToList();
        Assert.IsGreaterThan(10 * 48.0, refusedBytes / 1e6, "enough refused traffic for the bound to mean something");
        Assert.IsLessThan(48, settled.Max() - settled.Min(), "RSS while refusing: " + string.Join(", ", rss.Select(r => r.ToString("N0", System.Globalization.CultureInfo.InvariantCulture))));
        var throttledCalls = klaviyo.Received.Count;

        // Klaviyo recovers.
        var drain = System.Diagnostics.Stopwatch.StartNew();
        klaviyo.Answer("/api/events", 202);
        klaviyo.Answer("/api/event-bulk-create-jobs", 202);
        klaviyo.Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("p-1"));
        klaviyo.Answer("/api/lists/*", 204);
        klaviyo.Answer("/api/profile-subscription-bulk-create-jobs", 202);
        // Every job gets the same id: trackers still differ (they carry the first sequence number they parked).
        const string job = """{"data":{"type":"profile-bulk-import-job","id":"job-b","attributes":{"status":"complete","failed_count":0}}}""";
        klaviyo.Answer("/api/profile-bulk-import-jobs", 202, job);
        klaviyo.AnswerGet("/api/profile-bulk-import-jobs/job-b", 200, job);
        klaviyo.AnswerGet("/api/profile-bulk-import-jobs/job-b/import-errors", 200, """{"data":[],"links":{}}""");
        klaviyo.Server.DeleteMapping(throttle);
        await WaitForHealthAsync(app, backlog => (int)backlog["ready"]! + (int)backlog["scheduled"]! + (int)backlog["leased"]! + (int)backlog["deferred"]! == 0, TimeSpan.FromSeconds(120));
        var drained = drain.Elapsed;

        var reached = klaviyo.Received;
        var delivered = EventIds(reached.Where(r => r.Status is >= 200 and < 300));
        var everSent = EventIds(reached);
        CollectionAssert.IsSubsetOf(accepted, delivered.ToList(), "every accepted event is delivered once Klaviyo recovers");
        Assert.IsEmpty(refused.Where(everSent.Contains).ToList(), "nothing of a 503'd request was queued");
        Assert.AreEqual(0, await app.StopAsync(Patience));
        var summary = System.Text.RegularExpressions.Regex.Match(app.Output, @"(\d+) delivered, (\d+) skipped, (\d+) dead-lettered, (\d+) still queued");
        Assert.AreEqual(accepted.Count, int.Parse(summary.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) + int.Parse(summary.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), "each accepted event settled once: " + summary.Value);
        Assert.AreEqual("0", summary.Groups[3].Value);
        Assert.AreEqual("0", summary.Groups[4].Value);
        Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"backlog: accepted {accepted.Count}, refused-503 {refused.Count} ({refused.Count / 100} requests, {refusedBytes / 1e6:N0} MB), RSS min/max {rss.Min():N0}/{rss.Max():N0} MB (after 10 s {settled.Min():N0}/{settled.Max():N0}), drained in {drained.TotalSeconds:N1} s; Klaviyo answered 429 to {throttledCalls} calls in {throttled.TotalSeconds:N0} s, {reached.Count - throttledCalls} calls after"));
    }

    [TestMethod]
    public async Task LocalMode_DeadLettersReplayedWithTheAdminKey_AreDeliveredAndTheFileIsStrictJsonLines()
    {
        const string adminKey = "admin-key-0123456789";
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 400, FakeKlaviyo.ErrorAnswer(400, "invalid", "Invalid input.", null));
        var deadLetters = TempPath(".jsonl");
        await using var app = await StartAsync(klaviyo.BaseUrl, TempPath(".db"), new() { ["Local__AdminKey"] = adminKey, ["Local__DeadLetterPath"] = deadLetters });
        using (var response = await PostAsync(app, "/api/events", "[" + Track("replay-1") + "," + Track("replay-2") + "]"))
        {
            Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode);
        }
        await WaitForHealthAsync(app, backlog => (int)backlog["deadLettered"]! == 2);
        var deadline = DateTime.UtcNow + Patience;
        while ((!File.Exists(deadLetters) || File.ReadAllLines(deadLetters).Length < 2) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, TestContext.CancellationToken); // appended just after the commit
        }

        var bytes = await File.ReadAllBytesAsync(deadLetters, TestContext.CancellationToken);
        Assert.AreEqual((byte)'{', bytes[0], "no byte-order mark");
        var lines = Encoding.UTF8.GetString(bytes).TrimEnd('\n').Split('\n');
        Assert.AreSequenceEqual(["replay-1", "replay-2"], lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("messageId").GetString()).Order());

        using (var noKey = await PostAsync(app, "/api/dead-letters/replay?reason=KlaviyoRejected", ""))
        {
            Assert.AreEqual(HttpStatusCode.Unauthorized, noKey.StatusCode);
        }
        using (var wrongKey = await PostAsync(app, "/api/dead-letters/replay?code=admin-key-0123456780", ""))
        {
            Assert.AreEqual(HttpStatusCode.Unauthorized, wrongKey.StatusCode);
        }
        klaviyo.Server.ResetMappings();
        klaviyo.Answer("/api/events", 202);
        using var replay = await PostAsync(app, "/api/dead-letters/replay?reason=KlaviyoRejected&max=10", "", functionKey: adminKey);
        Assert.AreEqual(HttpStatusCode.OK, replay.StatusCode);
        var answer = JsonNode.Parse(await replay.Content.ReadAsStringAsync(TestContext.CancellationToken))!;
        Assert.AreEqual(2, (int)answer["moved"]!);

        await WaitForHealthAsync(app, backlog => (int)backlog["deadLettered"]! == 0 && (int)backlog["ready"]! == 0 && (int)backlog["leased"]! == 0);
        Assert.AreSequenceEqual(["replay-1", "replay-2"], UniqueIds(klaviyo.Received.Where(r => r.Status == 202)).Order());
    }

    [TestMethod]
    public async Task LocalMode_WithoutAdminKey_HasNoReplayRoute()
    {
        using var klaviyo = FakeKlaviyo.Start();
        await using var app = await StartAsync(klaviyo.BaseUrl, TempPath(".db"));

        using var response = await PostAsync(app, "/api/dead-letters/replay", "");

        Assert.AreEqual(HttpStatusCode.NotFound, response.StatusCode);
    }

    [TestMethod]
    public async Task LocalMode_BeyondLoopbackWithoutApiKey_RefusesToStartNamingTheSetting()
    {
        using var klaviyo = FakeKlaviyo.Start();

        var failure = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => StartAsync(klaviyo.BaseUrl, TempPath(".db"), listenHost: "0.0.0.0"));

        Assert.Contains("Local__ApiKey is required", failure.Message);
    }

    [TestMethod]
    public async Task LocalMode_BeyondLoopbackWithApiKey_AcceptsTheKeyAsHeaderOrCodeOnly()
    {
        const string apiKey = "api-key-0123456789abcdef";
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        await using var app = await StartAsync(klaviyo.BaseUrl, TempPath(".db"), new() { ["Local__ApiKey"] = apiKey }, listenHost: "0.0.0.0");

        using (var missing = await PostAsync(app, "/api/events", Track("key-0")))
        {
            Assert.AreEqual(HttpStatusCode.Unauthorized, missing.StatusCode);
            Assert.AreEqual("application/problem+json", missing.Content.Headers.ContentType?.MediaType);
        }
        using (var wrong = await PostAsync(app, "/api/events", Track("key-0"), functionKey: apiKey + "x"))
        {
            Assert.AreEqual(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }
        using (var header = await PostAsync(app, "/api/events", Track("key-1"), functionKey: apiKey))
        {
            Assert.AreEqual(HttpStatusCode.Accepted, header.StatusCode);
        }
        using (var code = await PostAsync(app, "/api/events?code=" + apiKey, Track("key-2")))
        {
            Assert.AreEqual(HttpStatusCode.Accepted, code.StatusCode);
        }
        await klaviyo.WaitForReceivedAsync(2, TestContext.CancellationToken);
        Assert.AreSequenceEqual(["key-1", "key-2"], UniqueIds(klaviyo.Received).Order());
        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.DoesNotContain(apiKey, app.Output);
    }

    [TestMethod]
    public async Task LocalMode_DatabaseThatCannotBeOpened_StopsStartUpNamingTheSetting()
    {
        using var klaviyo = FakeKlaviyo.Start();
        var blocker = TempPath(".file");
        await File.WriteAllTextAsync(blocker, "", TestContext.CancellationToken);

        var failure = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => StartAsync(klaviyo.BaseUrl, Path.Combine(blocker, "relay.db")));

        Assert.Contains("Local__DatabasePath", failure.Message);
    }

    /// <summary>The messageIds of events the database still holds (waiting or leased), read after the kill.</summary>
    private static HashSet<string> PendingIds(string database)
    {
        using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
        db.Open();
        using var command = db.CreateCommand();
        command.CommandText = "SELECT event_message_id FROM messages WHERE state IN (0, 1)";
        using var reader = command.ExecuteReader();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read())
        {
            ids.Add(reader.GetString(0));
        }
        return ids;
    }

    private static long LeasedRows(string database)
    {
        using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
        db.Open();
        using var command = db.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM messages WHERE state = 1";
        return (long)command.ExecuteScalar()!;
    }

    /// <summary>The standard mix as templates: <c>@ID@</c> in place of messageId and userId.</summary>
    private static List<string> MixTemplates() =>
        [.. File.ReadLines(Path.Combine(KlaviyoSchemas.SharedDirectory, "bench", "event-mix.jsonl")).Where(l => l.Length > 0).Select(line =>
        {
            var node = JsonNode.Parse(line)!.AsObject();
            node["messageId"] = "@ID@";
            if (node.ContainsKey("userId"))
            {
                node["userId"] = "@ID@";
            }
            return node.ToJsonString();
        })];

    private static HashSet<string> EventIds(IEnumerable<ReceivedRequest> received) =>
        [.. received.SelectMany(r => System.Text.RegularExpressions.Regex.Matches(r.Body, "bl-[0-9]{7}").Select(m => m.Value))];

    private static string Track(string id) => $$"""{"type":"track","messageId":"{{id}}","userId":"u-{{id}}","event":"Signed Up"}""";

    private static string UniqueId(ReceivedRequest request) => (string)JsonNode.Parse(request.Body)!["data"]!["attributes"]!["unique_id"]!;

    private static HashSet<string> UniqueIds(IEnumerable<ReceivedRequest> received) => [.. EventUniqueIds(received)];

    /// <summary>The <c>unique_id</c> of every event Klaviyo was sent, one call at a time or in bulk, repeats kept.</summary>
    private static List<string> EventUniqueIds(IEnumerable<ReceivedRequest> received) =>
        [.. received.Where(r => r.Path == "/api/events").Select(UniqueId)
            .Concat(received.Where(r => r.Path == "/api/event-bulk-create-jobs").SelectMany(r =>
                JsonNode.Parse(r.Body)!["data"]!["attributes"]!["events-bulk-create"]!["data"]!.AsArray()
                    .SelectMany(entry => entry!["attributes"]!["events"]!["data"]!.AsArray().Select(e => (string)e!["attributes"]!["unique_id"]!))))];

    private async Task<LocalAppProcess> StartAsync(string klaviyoBaseUrl, string database, Dictionary<string, string>? extra = null, string listenHost = "127.0.0.1")
    {
        var settings = new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = Key,
            ["Klaviyo__BaseUrl"] = klaviyoBaseUrl,
            ["Local__DatabasePath"] = database,
            ["Local__DeadLetterPath"] = database + ".jsonl",
            ["Relay__InCallRetryDelay"] = "00:00:00.1",
        };
        foreach (var (name, value) in extra ?? [])
        {
            settings[name] = value;
        }
        return await LocalAppProcess.StartAsync(settings, TimeSpan.FromSeconds(30), listenHost);
    }

    private async Task<HttpResponseMessage> PostAsync(LocalAppProcess app, string path, string body, string? functionKey = null)
    {
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        return await PostAsync(http, path, body, functionKey);
    }

    private async Task<HttpResponseMessage> PostAsync(HttpClient http, string path, string body, string? functionKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (functionKey is not null)
        {
            request.Headers.Add("x-functions-key", functionKey);
        }
        return await http.SendAsync(request, TestContext.CancellationToken);
    }

    private Task<JsonNode> WaitForHealthAsync(LocalAppProcess app, Func<JsonNode, bool> backlogCondition, TimeSpan? patience = null) =>
        app.WaitForBacklogAsync(backlogCondition, patience ?? Patience, TestContext.CancellationToken);

    private string TempPath(string extension) => Path.Combine(Path.GetTempPath(), $"klaviyo-durable-{TestContext.TestName}-{Guid.NewGuid():N}{extension}");
}
