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
[DoNotParallelize]
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
        using (var slow = FakeKlaviyo.Start().Answer("/api/events", 202, delay: TimeSpan.FromSeconds(1)))
        {
            var app = await StartAsync(slow.BaseUrl, database);
            for (var batch = 0; batch < count / 100; batch++)
            {
                var ids = Enumerable.Range(batch * 100, 100).Select(i => $"crash-{i}").ToList();
                using var response = await PostAsync(app, "/api/events", "[" + string.Join(",", ids.Select(Track)) + "]");
                Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode);
                accepted.AddRange(ids);
            }
            // Killed mid-stream: some events answered by Klaviyo (some of those not yet settled), others still held.
            await slow.WaitForReceivedAsync(40, TestContext.CancellationToken);
            await app.KillAsync();
            await app.DisposeAsync();
            beforeKill = [.. slow.Received];
        }
        var leasedAtKill = LeasedRows(database);
        Assert.IsGreaterThan(0, leasedAtKill, "the kill cut deliveries off while their events were leased");

        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        var restart = System.Diagnostics.Stopwatch.StartNew();
        await using var restarted = await StartAsync(klaviyo.BaseUrl, database);
        var deadline = DateTime.UtcNow + Patience;
        HashSet<string> Delivered() => [.. UniqueIds(beforeKill), .. UniqueIds(klaviyo.Received)];
        while (Delivered().Count < count && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, TestContext.CancellationToken);
        }
        var drained = restart.Elapsed;

        Assert.AreSequenceEqual(accepted.Order(StringComparer.Ordinal), Delivered().Order(StringComparer.Ordinal), "every accepted event is delivered, before the kill or after the restart");
        Assert.Contains($"{leasedAtKill} event(s) leased by a previous relay process", restarted.Output, "the leases of the killed process are released at open");
        Assert.IsLessThan(TimeSpan.FromSeconds(60), drained, "drained long before the 2-min lease would have lapsed");
        var all = beforeKill.Concat(klaviyo.Received).Select(UniqueId).ToList();
        var duplicates = all.Count - all.Distinct().Count();
        Console.WriteLine($"kill -9: {count} accepted, {beforeKill.Count} answered by Klaviyo before the kill, {leasedAtKill} leased at the kill, {klaviyo.Received.Count} delivered after the restart in {drained.TotalSeconds:N1} s (start-up included; lease 2 min); {duplicates} duplicate deliveries (in flight at the kill; unique_id makes them harmless)");
        Assert.IsLessThanOrEqualTo(16, duplicates, "duplicates only where a delivery was in flight (16 consumers)");
        Assert.AreEqual(0, await restarted.StopAsync(Patience));
        Assert.Contains($"{klaviyo.Received.Count} delivered, 0 skipped, 0 dead-lettered, 0 still queued", restarted.Output);
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
    public async Task LocalMode_KlaviyoThrottlesUntilTheBacklogIsFull_Answers503ThenDeliversEverythingAccepted()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 429, FakeKlaviyo.ErrorAnswer(429, "throttled", "Request was throttled.", null), new Dictionary<string, string> { ["Retry-After"] = "1" });
        await using var app = await StartAsync(klaviyo.BaseUrl, TempPath(".db"), new() { ["Local__MaxBacklog"] = "200" });
        var accepted = new List<string>();
        var rss = new List<double> { app.ResidentMegabytes() };
        HttpResponseMessage? refused = null;
        for (var batch = 0; refused is null && batch < 100; batch++)
        {
            var ids = Enumerable.Range(batch * 20, 20).Select(i => $"backlog-{i}").ToList();
            var response = await PostAsync(app, "/api/events", "[" + string.Join(",", ids.Select(Track)) + "]");
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                accepted.AddRange(ids);
                response.Dispose();
            }
            else
            {
                refused = response;
            }
            rss.Add(app.ResidentMegabytes());
        }

        Assert.IsNotNull(refused, "the ingest refuses once Local:MaxBacklog events wait");
        using (refused)
        {
            Assert.AreEqual(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.IsNotNull(refused.Headers.RetryAfter);
            Assert.AreEqual("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        }
        Assert.HasCount(200, accepted);
        TestContext.WriteLine($"RSS while filling the backlog: {string.Join(", ", rss.Select(r => r.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)))} MB");

        klaviyo.Server.ResetMappings();
        klaviyo.Answer("/api/events", 202);
        var deadline = DateTime.UtcNow + Patience;
        while (!accepted.All(UniqueIds(klaviyo.Received.Where(r => r.Status == 202)).Contains) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, TestContext.CancellationToken);
        }
        CollectionAssert.IsSubsetOf(accepted, UniqueIds(klaviyo.Received.Where(r => r.Status == 202)).ToList(), "everything accepted is delivered once Klaviyo recovers");
        var health = await WaitForHealthAsync(app, backlog => (int)backlog["ready"]! + (int)backlog["scheduled"]! + (int)backlog["leased"]! == 0);
        Assert.AreEqual(0, (int)health["backlog"]!["deadLettered"]!);
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

    private static long LeasedRows(string database)
    {
        using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
        db.Open();
        using var command = db.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM messages WHERE state = 1";
        return (long)command.ExecuteScalar()!;
    }

    private static string Track(string id) => $$"""{"type":"track","messageId":"{{id}}","userId":"u-{{id}}","event":"Signed Up"}""";

    private static string UniqueId(ReceivedRequest request) => (string)JsonNode.Parse(request.Body)!["data"]!["attributes"]!["unique_id"]!;

    private static HashSet<string> UniqueIds(IEnumerable<ReceivedRequest> received) => [.. received.Where(r => r.Path == "/api/events").Select(UniqueId)];

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
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (functionKey is not null)
        {
            request.Headers.Add("x-functions-key", functionKey);
        }
        return await http.SendAsync(request, TestContext.CancellationToken);
    }

    private async Task<JsonNode> WaitForHealthAsync(LocalAppProcess app, Func<JsonNode, bool> backlogCondition)
    {
        using var http = new HttpClient();
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var health = JsonNode.Parse(await http.GetStringAsync(app.BaseUrl + "/api/health", TestContext.CancellationToken))!;
            if (backlogCondition(health["backlog"]!))
            {
                return health;
            }
            Assert.IsLessThan(deadline, DateTime.UtcNow, "health never reported the expected backlog: " + health.ToJsonString());
            await Task.Delay(50, TestContext.CancellationToken);
        }
    }

    private string TempPath(string extension) => Path.Combine(Path.GetTempPath(), $"klaviyo-durable-{TestContext.TestName}-{Guid.NewGuid():N}{extension}");
}
