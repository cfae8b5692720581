using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>
/// Bulk calls filled across batches (spec 8, <c>Relay__GatherWindow</c>), from the outside: the built app in local mode
/// relays four requests of the standard mix's shape (750 events and 250 profiles each) as three full event calls and one
/// import job, where batch by batch it would send four part-full event calls and four import jobs.
/// </summary>
[TestClass]
public sealed class LocalGatherTests
{
    private const string BulkPath = "/api/event-bulk-create-jobs";
    private const string ImportPath = "/api/profile-bulk-import-jobs";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    public TestContext TestContext { get; set; } = null!;

    private static string Request(int r) => "[" + string.Join(",",
        Enumerable.Range(0, 750).Select(i => $$"""{"type":"track","messageId":"t-{{r}}-{{i}}","userId":"u-{{r}}-{{i % 50}}","event":"Signed Up"}""")
        .Concat(Enumerable.Range(0, 250).Select(i => $"{{\"type\":\"identify\",\"messageId\":\"p-{r}-{i}\",\"userId\":\"p-{r}-{i}\",\"traits\":{{\"email\":\"p{r}x{i}@example.com\"}}}}"))) + "]";

    private static string JobAnswer(string status) =>
        "{\"data\":{\"type\":\"profile-bulk-import-job\",\"id\":\"job-g\",\"attributes\":{\"status\":\"" + status + "\",\"failed_count\":0}}}";

    private static int Count(string body, string kind) =>
        JsonNode.Parse(body)!["data"]!["attributes"]![kind]!["data"]!.AsArray().Sum(e => kind == "events-bulk-create" ? e!["attributes"]!["events"]!["data"]!.AsArray().Count : 1);

    [TestMethod]
    public async Task FourMixedRequests_GatheredIntoThreeFullEventCallsAndOneImportJob()
    {
        var received = await RelayFourRequestsAsync(gatherWindow: "00:00:05");

        var events = received.Where(r => r.Path == BulkPath).Select(r => Count(r.Body, "events-bulk-create")).ToList();
        Assert.AreEqual("1000,1000,1000", string.Join(",", events), "every event call full");
        var imports = received.Where(r => r.Path == ImportPath).Select(r => Count(r.Body, "profiles")).ToList();
        Assert.AreEqual("1000", string.Join(",", imports), "one import job for the list's 1,000 profiles");
    }

    [TestMethod]
    public async Task FourMixedRequests_WithoutGathering_EveryBatchSendsItsOwnPartFullCalls()
    {
        var received = await RelayFourRequestsAsync(gatherWindow: "00:00:00");

        var events = received.Where(r => r.Path == BulkPath).Select(r => Count(r.Body, "events-bulk-create")).ToList();
        Assert.AreEqual(3000, events.Sum());
        Assert.IsGreaterThanOrEqualTo(4, events.Count, string.Join(",", events));
        Assert.IsGreaterThanOrEqualTo(4, received.Count(r => r.Path == ImportPath));
    }

    private async Task<IReadOnlyList<ReceivedRequest>> RelayFourRequestsAsync(string gatherWindow)
    {
        var database = Path.Combine(Path.GetTempPath(), $"klaviyo-gather-{Guid.NewGuid():N}.db");
        using var klaviyo = FakeKlaviyo.Start()
            .Answer(BulkPath, 202)
            .Answer(ImportPath, 202, JobAnswer("queued"))
            .AnswerGet($"{ImportPath}/job-g", 200, JobAnswer("complete"))
            .AnswerGet($"{ImportPath}/job-g/import-errors", 200, "{\"data\":[],\"links\":{\"self\":\"x\"}}");
        await using var app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = "pk_e2e_gather_key",
            ["Klaviyo__BaseUrl"] = klaviyo.BaseUrl,
            ["Klaviyo__ListId"] = "LiSt01",
            ["Relay__GatherWindow"] = gatherWindow,
            ["Local__DatabasePath"] = database,
            ["Local__DeadLetterPath"] = database + ".jsonl",
        }, TimeSpan.FromSeconds(30));

        var bodies = Enumerable.Range(0, 4).Select(Request).ToList();
        using (var http = new HttpClient())
        {
            foreach (var body in bodies)
            {
                using var response = await http.PostAsync(app.BaseUrl + "/api/events", new StringContent(body, Encoding.UTF8, "application/json"), TestContext.CancellationToken);
                Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode);
            }
        }
        var done = await app.WaitForBacklogAsync(b => (int)b["deferred"]! + (int)b["ready"]! + (int)b["scheduled"]! + (int)b["leased"]! == 0, Patience, TestContext.CancellationToken);
        Assert.AreEqual(0, (int)done["backlog"]!["deadLettered"]!);
        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.Contains("4000 delivered, 0 skipped, 0 dead-lettered, 0 still queued", app.Output);
        return klaviyo.Received;
    }
}
