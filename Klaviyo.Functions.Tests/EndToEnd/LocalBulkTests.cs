using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>
/// Local mode's batched relay from the outside (spec 8, 9): the built app as a child process, a request of events and
/// profiles relayed as bulk calls, and an import job still running when the app stops that settles its messages after
/// the app started again on the same database.
/// </summary>
[TestClass]
public sealed class LocalBulkTests
{
    private const string Key = "pk_e2e_bulk_key";
    private const string ImportPath = "/api/profile-bulk-import-jobs";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public TestContext TestContext { get; set; } = null!;

    private static string Track(int i) => $$"""{"type":"track","messageId":"t-{{i}}","userId":"u-{{i}}","event":"Signed Up"}""";

    private static string Identify(int i) => "{\"type\":\"identify\",\"messageId\":\"p-" + i + "\",\"userId\":\"p-" + i + "\",\"traits\":{\"email\":\"p" + i + "@example.com\",\"firstName\":\"P" + i + "\"}}";

    private static string JobAnswer(string id, string status) =>
        "{\"data\":{\"type\":\"profile-bulk-import-job\",\"id\":\"" + id + "\",\"attributes\":{\"status\":\"" + status + "\",\"failed_count\":0}}}";

    [TestMethod]
    public async Task LocalMode_ImportJobStillRunningAtStop_SettlesItsMessagesAfterTheRestartWithoutASecondImport()
    {
        var database = Path.Combine(Path.GetTempPath(), $"klaviyo-bulk-{Guid.NewGuid():N}.db");
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/event-bulk-create-jobs", 202)
            .Answer(ImportPath, 202, JobAnswer("job-r", "queued"))
            .AnswerGet($"{ImportPath}/job-r", 200, JobAnswer("job-r", "processing"));

        var app = await StartAsync(klaviyo.BaseUrl, database);
        var body = "[" + string.Join(",", Enumerable.Range(0, 15).Select(Track).Concat(Enumerable.Range(0, 12).Select(Identify))) + "]";
        using (var http = new HttpClient())
        using (var response = await http.PostAsync(app.BaseUrl + "/api/events", new StringContent(body, Encoding.UTF8, "application/json"), TestContext.CancellationToken))
        {
            Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode);
        }
        await WaitUntilAsync(() => klaviyo.Received.Any(r => r.Method == "GET"), "the job was never asked about");
        var parked = await WaitForHealthAsync(app, backlog => (int)backlog["deferred"]! == 12);
        Assert.AreEqual(0, (int)parked["backlog"]!["ready"]!);
        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.Contains("15 delivered, 0 skipped, 0 dead-lettered", app.Output, "the events went in one bulk call; the profiles wait for their job");
        await app.DisposeAsync();

        Assert.ContainsSingle(r => r.Path == "/api/event-bulk-create-jobs", klaviyo.Received, "15 events, one call");
        var import = klaviyo.Received.Single(r => r.Path == ImportPath);
        Assert.HasCount(12, JsonNode.Parse(import.Body)!["data"]!["attributes"]!["profiles"]!["data"]!.AsArray());

        // Klaviyo finishes the job while the relay is down.
        klaviyo.Server.ResetMappings();
        klaviyo.AnswerGet($"{ImportPath}/job-r", 200, JobAnswer("job-r", "complete"))
            .AnswerGet($"{ImportPath}/job-r/import-errors", 200, "{\"data\":[],\"links\":{\"self\":\"x\"}}");
        await using var restarted = await StartAsync(klaviyo.BaseUrl, database);
        var done = await WaitForHealthAsync(restarted, backlog => (int)backlog["deferred"]! + (int)backlog["ready"]! + (int)backlog["scheduled"]! + (int)backlog["leased"]! == 0);

        Assert.AreEqual(0, (int)done["backlog"]!["deadLettered"]!);
        Assert.AreEqual(0, await restarted.StopAsync(Patience));
        Assert.Contains("12 delivered, 0 skipped, 0 dead-lettered, 0 still queued", restarted.Output, "the tracker from before the stop settled every profile");
        Assert.ContainsSingle(r => r.Path == ImportPath, klaviyo.Received, "the job was tracked across the restart, not started again");
        klaviyo.AssertNoUnexpectedCalls();
    }

    [TestMethod]
    public async Task LocalMode_DryRun_BatchesPrintTheirBulkCallsAndSettleAsDelivered()
    {
        var database = Path.Combine(Path.GetTempPath(), $"klaviyo-bulk-dry-{Guid.NewGuid():N}.db");
        await using var app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = Key,
            ["Klaviyo__DryRun"] = "true",
            ["Local__DatabasePath"] = database,
            ["Local__DeadLetterPath"] = database + ".jsonl",
        }, TimeSpan.FromSeconds(30));
        var body = "[" + string.Join(",", Enumerable.Range(0, 12).Select(Track).Concat(Enumerable.Range(0, 12).Select(Identify))) + "]";
        using (var http = new HttpClient())
        using (var response = await http.PostAsync(app.BaseUrl + "/api/events", new StringContent(body, Encoding.UTF8, "application/json"), TestContext.CancellationToken))
        {
            Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode);
        }

        var done = await WaitForHealthAsync(app, backlog => (int)backlog["deferred"]! + (int)backlog["ready"]! + (int)backlog["scheduled"]! + (int)backlog["leased"]! == 0);

        Assert.AreEqual(0, (int)done["backlog"]!["deadLettered"]!);
        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.Contains("24 delivered, 0 skipped, 0 dead-lettered, 0 still queued", app.Output, "the dry-run import job completes like a real one");
        Assert.Contains("[dry run] POST /api/event-bulk-create-jobs", app.Output);
        Assert.Contains("[dry run] POST /api/profile-bulk-import-jobs", app.Output);
        Assert.DoesNotContain(Key, app.Output);
    }

    [TestMethod]
    public async Task LocalMode_JobTrackerDueBehindAnEventBacklog_AsksAboutItsJobWhileTheBacklogWaits()
    {
        // Every event bulk call hangs out its 10 s attempt, so the two event consumers work through 10,000 events in
        // ten batches, 50 s. The import job's first status read is due 21 s after the job: by due time it would wait
        // behind the backlog's 10,000 events, ingested earlier; in its own lane it goes when due.
        var database = Path.Combine(Path.GetTempPath(), $"klaviyo-lane-{Guid.NewGuid():N}.db");
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/event-bulk-create-jobs", 202, delay: TimeSpan.FromSeconds(15))
            .Answer(ImportPath, 202, JobAnswer("job-l", "queued"))
            .AnswerGet($"{ImportPath}/job-l", 200, JobAnswer("job-l", "complete"));
        await using var app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = Key,
            ["Klaviyo__BaseUrl"] = klaviyo.BaseUrl,
            ["Local__DatabasePath"] = database,
            ["Local__DeadLetterPath"] = database + ".jsonl",
            ["Relay__MaxInCallRetries"] = "0",
        }, TimeSpan.FromSeconds(30));
        using var http = new HttpClient();

        await PostAsync(http, app, Enumerable.Range(0, 12).Select(Identify));
        await WaitUntilAsync(() => klaviyo.Received.Any(r => r.Path == ImportPath), "the import job was never started");
        var jobStarted = DateTime.UtcNow;
        foreach (var chunk in Enumerable.Range(0, 10_000).Chunk(500))
        {
            await PostAsync(http, app, chunk.Select(Track));
        }
        await WaitUntilAsync(() => klaviyo.Received.Any(r => r.Method == "GET"), "the job was never asked about");
        var asked = DateTime.UtcNow - jobStarted;
        var backlog = (await WaitForHealthAsync(app, _ => true))["backlog"]!;

        Assert.IsLessThan(TimeSpan.FromSeconds(30), asked, $"the first status read came {asked.TotalSeconds:N1} s after the job (due after 21 s)");
        Assert.IsGreaterThan(2_000, (int)backlog["ready"]! + (int)backlog["leased"]!, "the event backlog was still waiting: " + backlog.ToJsonString());
    }

    [TestMethod]
    public async Task LocalMode_KlaviyoAnswers429ToEverything_TheBacklogWaitsForTheBudgetInsteadOfBeingPutOffBatchByBatch()
    {
        // Retry-After 30: after the first refusals the limiter holds every call back. A batch that got nothing through
        // stops the consumers until the budget is back; putting the backlog off batch by batch re-plans every event.
        var database = Path.Combine(Path.GetTempPath(), $"klaviyo-held-{Guid.NewGuid():N}.db");
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/event-bulk-create-jobs", 429,
            FakeKlaviyo.ErrorAnswer(429, "throttled", "Request was throttled. Expected available in 30 second(s).", null),
            new Dictionary<string, string> { ["Retry-After"] = "30" });
        await using var app = await StartAsync(klaviyo.BaseUrl, database);
        using var http = new HttpClient();
        foreach (var chunk in Enumerable.Range(0, 10_000).Chunk(500))
        {
            await PostAsync(http, app, chunk.Select(Track));
        }

        await WaitUntilAsync(() => klaviyo.Received.Any(r => r.Status == 429), "Klaviyo was never called");
        await Task.Delay(TimeSpan.FromSeconds(10), TestContext.CancellationToken);
        var backlog = (await WaitForHealthAsync(app, _ => true))["backlog"]!;

        Assert.IsGreaterThan(5_000, (int)backlog["ready"]!, "most of the backlog is still waiting its turn, not put off: " + backlog.ToJsonString());
        Assert.IsLessThan(5, klaviyo.Received.Count, "held back, not sent");
    }

    private async Task PostAsync(HttpClient http, LocalAppProcess app, IEnumerable<string> events)
    {
        using var response = await http.PostAsync(app.BaseUrl + "/api/events", new StringContent("[" + string.Join(",", events) + "]", Encoding.UTF8, "application/json"), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode);
    }

    private async Task<LocalAppProcess> StartAsync(string klaviyoBaseUrl, string database) =>
        await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = Key,
            ["Klaviyo__BaseUrl"] = klaviyoBaseUrl,
            ["Local__DatabasePath"] = database,
            ["Local__DeadLetterPath"] = database + ".jsonl",
        }, TimeSpan.FromSeconds(30));

    private async Task WaitUntilAsync(Func<bool> condition, string failure)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            Assert.IsLessThan(deadline, DateTime.UtcNow, failure);
            await Task.Delay(50, TestContext.CancellationToken);
        }
    }

    private Task<JsonNode> WaitForHealthAsync(LocalAppProcess app, Func<JsonNode, bool> backlogCondition) =>
        app.WaitForBacklogAsync(backlogCondition, Patience, TestContext.CancellationToken);
}
