using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>The built app in local mode deleting a person through <c>POST /api/privacy/deletions</c> (spec 5.7, 11),
/// against a fake Klaviyo on 127.0.0.1.</summary>
[TestClass]
public sealed class LocalPrivacyTests
{
    private const string AdminKey = "admin-key-0123456789";
    private const string Email = "forget.me@example.com";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task LocalMode_DeletionThroughTheAdminRoute_KlaviyoGetsAJobPerIdentifierAndTheDeleteEventIsSkipped()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .AnswerGet("/api/profiles", 200, """{"data":[{"type":"profile","id":"01HLOCALPROFILE"}],"links":{"next":null}}""")
            .Answer("/api/data-privacy-deletion-jobs", 202);
        var database = Path.Combine(Path.GetTempPath(), $"klaviyo-privacy-{Guid.NewGuid():N}.db");
        await using var app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = "pk_e2e_privacy_key",
            ["Klaviyo__BaseUrl"] = klaviyo.BaseUrl,
            ["Local__DatabasePath"] = database,
            ["Local__DeadLetterPath"] = database + ".jsonl",
            ["Local__AdminKey"] = AdminKey,
        }, Patience);
        const string body = """{"requests":[{"userId":"u-forget","email":"forget.me@example.com"}]}""";

        using (var noKey = await PostAsync(app, "/api/privacy/deletions", body))
        {
            Assert.AreEqual(HttpStatusCode.Unauthorized, noKey.StatusCode, "no admin key, on loopback too");
        }
        using (var wrongKey = await PostAsync(app, "/api/privacy/deletions", body, "admin-key-0123456780"))
        {
            Assert.AreEqual(HttpStatusCode.Unauthorized, wrongKey.StatusCode);
        }
        using (var bad = await PostAsync(app, "/api/privacy/deletions", """{"requests":[{}]}""", AdminKey))
        {
            Assert.AreEqual(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("requests[0]", await bad.Content.ReadAsStringAsync(TestContext.CancellationToken));
        }
        using var accepted = await PostAsync(app, "/api/privacy/deletions", body, AdminKey);
        Assert.AreEqual(HttpStatusCode.Accepted, accepted.StatusCode);
        var answer = JsonNode.Parse(await accepted.Content.ReadAsStringAsync(TestContext.CancellationToken))!;
        Assert.AreEqual(1, (int)answer["accepted"]!);
        // Privacy__DeleteEvents is off: a delete event is accepted and skipped, the route's deletion still goes.
        using (var deleteEvent = await PostAsync(app, "/api/events", """{"type":"delete","messageId":"skip-me","traits":{"email":"forget.me@example.com"}}"""))
        {
            Assert.AreEqual(HttpStatusCode.Accepted, deleteEvent.StatusCode);
        }

        await app.WaitForBacklogAsync(b => (int)b["ready"]! == 0 && (int)b["leased"]! == 0 && (int)b["scheduled"]! == 0, Patience, TestContext.CancellationToken);
        var jobs = await klaviyo.WaitForReceivedAsync(3, TestContext.CancellationToken);
        Assert.AreSequenceEqual(["GET /api/profiles", "POST /api/data-privacy-deletion-jobs", "POST /api/data-privacy-deletion-jobs"], jobs.Select(r => $"{r.Method} {r.Path}"));
        Assert.Contains(Email, jobs[1].Body);
        Assert.Contains("01HLOCALPROFILE", jobs[2].Body);
        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.Contains("1 delivered, 1 skipped, 0 dead-lettered, 0 still queued", app.Output);
        Assert.DoesNotContain(Email, app.Output, "the person's email never reaches the app's log");
    }

    [TestMethod]
    public async Task LocalMode_DryRunDeletion_PrintsTheLookupAndTheJobsWithoutTheEmail()
    {
        var database = Path.Combine(Path.GetTempPath(), $"klaviyo-privacy-dry-{Guid.NewGuid():N}.db");
        await using var app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = "pk_e2e_privacy_key",
            ["Klaviyo__DryRun"] = "true",
            ["Local__DatabasePath"] = database,
            ["Local__DeadLetterPath"] = database + ".jsonl",
            ["Local__AdminKey"] = AdminKey,
        }, Patience);

        using var accepted = await PostAsync(app, "/api/privacy/deletions", """{"requests":[{"userId":"u-dry","email":"forget.me@example.com"}]}""", AdminKey);
        Assert.AreEqual(HttpStatusCode.Accepted, accepted.StatusCode);
        await app.WaitForBacklogAsync(b => (int)b["ready"]! == 0 && (int)b["leased"]! == 0 && (int)b["scheduled"]! == 0, Patience, TestContext.CancellationToken);
        Assert.AreEqual(0, await app.StopAsync(Patience));

        Assert.Contains("[dry run] GET /api/profiles?filter=equals(external_id,\"u-dry\")", app.Output);
        Assert.Contains("[dry run] POST /api/data-privacy-deletion-jobs {\"data\":{\"type\":\"data-privacy-deletion-job\"", app.Output);
        Assert.Contains("[email sha256:", app.Output);
        Assert.Contains("01DRYRUNPROFILE", app.Output, "the lookup's made-up profile gets its own job");
        Assert.DoesNotContain(Email, app.Output);
        Assert.Contains("1 delivered, 0 skipped, 0 dead-lettered, 0 still queued", app.Output);
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
}
