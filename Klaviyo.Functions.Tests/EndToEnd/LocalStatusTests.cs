using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>Local mode's <c>GET /</c> and <c>GET /api/status</c> over HTTP (spec section 11): key rules beyond loopback,
/// one source with <c>/api/health</c>, nothing from elsewhere, no key in the answer.</summary>
[TestClass]
public sealed partial class LocalStatusTests
{
    private const string KlaviyoKey = "pk_status_secret_key";
    private const string ApiKey = "api-key-for-the-status-test";
    private const string AdminKey = "admin-key-for-the-status-test";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task Status_BeyondLoopback_NeedsTheKeyAndReportsTheHealthBacklogWithoutAnyKey()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 400, FakeKlaviyo.ErrorAnswer(400, "invalid", "Invalid input.", null));
        await using var app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = KlaviyoKey,
            ["Klaviyo__BaseUrl"] = klaviyo.BaseUrl,
            ["Local__ApiKey"] = ApiKey,
            ["Local__AdminKey"] = AdminKey,
            ["Local__DeadLetterPath"] = Path.Combine(Path.GetTempPath(), $"klaviyo-status-{Guid.NewGuid():N}.jsonl"),
        }, listenHost: "0.0.0.0");
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        using (var content = new StringContent("""{"type":"track","messageId":"status-1","userId":"u-1","event":"Signed Up","properties":{"email":"jo@example.com"}}""", Encoding.UTF8, "application/json"))
        {
            content.Headers.Add("x-functions-key", ApiKey);
            using var accepted = await http.PostAsync("/api/events", content, TestContext.CancellationToken);
            Assert.AreEqual(HttpStatusCode.Accepted, accepted.StatusCode);
        }
        await app.WaitForBacklogAsync(b => (int)b["deadLettered"]! == 1, Patience, TestContext.CancellationToken);

        using var noKey = await http.GetAsync("/api/status", TestContext.CancellationToken);
        using var wrongKey = await http.GetAsync("/api/status?code=not-the-key", TestContext.CancellationToken);
        using var pageNoKey = await http.GetAsync("/", TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.Unauthorized, noKey.StatusCode);
        Assert.AreEqual(HttpStatusCode.Unauthorized, wrongKey.StatusCode);
        Assert.AreEqual(HttpStatusCode.Unauthorized, pageNoKey.StatusCode);

        var statusText = await http.GetStringAsync($"/api/status?code={ApiKey}", TestContext.CancellationToken);
        var health = JsonNode.Parse(await http.GetStringAsync("/api/health", TestContext.CancellationToken))!;
        var status = JsonNode.Parse(statusText)!;
        Assert.AreEqual(health["backlog"]!.ToJsonString(), status["backlog"]!.ToJsonString(), "one source for both");
        Assert.AreEqual(1, (int)status["sinceStart"]!["accepted"]!);
        Assert.AreEqual(1, (int)status["sinceStart"]!["deadLettered"]!);
        var group = status["deadLetters"]!.AsArray().Single()!;
        Assert.AreEqual("KlaviyoRejected", (string?)group["reason"]);
        Assert.AreEqual(1, (int)group["count"]!);
        Assert.AreEqual("status-1", (string?)group["sample"]!["messageId"]);
        Assert.AreEqual("POST /api/events answered 400: invalid: Invalid input.", (string?)group["sample"]!["description"]);
        Assert.Contains("\"Signed Up\"", (string)group["sample"]!["event"]!);
        Assert.IsTrue((bool)status["replay"]!);
        var createEvent = status["klaviyo"]!.AsArray().Single(e => (string?)e!["endpoint"] == "CreateEvent")!;
        Assert.AreEqual(1, (int)createEvent["requests"]!);
        Assert.AreEqual(0, (int)createEvent["tooManyRequests"]!);
        Assert.AreEqual(300, status["rates"]!["accepted"]!.AsArray().Count);
        Assert.AreEqual(1, status["rates"]!["accepted"]!.AsArray().Sum(v => (int)v!));
        foreach (var secret in new[] { KlaviyoKey, ApiKey, AdminKey })
        {
            Assert.DoesNotContain(secret, statusText);
        }

        using var adminStatus = new HttpRequestMessage(HttpMethod.Get, "/api/status") { Headers = { { "x-functions-key", AdminKey } } };
        using var byAdmin = await http.SendAsync(adminStatus, TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, byAdmin.StatusCode, "the admin key opens the status too");
        Assert.AreEqual(0, await app.StopAsync(Patience));
    }

    [TestMethod]
    public async Task Page_OnLoopback_IsOneSelfContainedDocumentThatLoadsNothingFromElsewhere()
    {
        using var klaviyo = FakeKlaviyo.Start();
        await using var app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = KlaviyoKey,
            ["Klaviyo__BaseUrl"] = klaviyo.BaseUrl,
        });
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };

        using var page = await http.GetAsync("/", TestContext.CancellationToken);
        var html = await page.Content.ReadAsStringAsync(TestContext.CancellationToken);

        Assert.AreEqual(HttpStatusCode.OK, page.StatusCode);
        Assert.AreEqual("text/html", page.Content.Headers.ContentType?.MediaType);
        var policy = string.Join(";", page.Headers.GetValues("Content-Security-Policy"));
        Assert.StartsWith("default-src 'none'; script-src 'sha256-", policy);
        Assert.Contains("connect-src 'self'", policy);
        Assert.IsFalse(ExternalReference().IsMatch(html), "no src or href outside the page: " + ExternalReference().Match(html).Value);
        Assert.DoesNotContain("@import", html);
        Assert.DoesNotContain("url(", html);
        var status = JsonNode.Parse(await http.GetStringAsync("/api/status", TestContext.CancellationToken))!;
        Assert.IsFalse((bool)status["replay"]!, "without Local:AdminKey there is no replay");
        Assert.IsEmpty(status["deadLetters"]!.AsArray());
        Assert.AreEqual(0, await app.StopAsync(Patience));
    }

    [GeneratedRegex("""(?:src|href)\s*=\s*["']?(?!data:)[^"'\s>]+""", RegexOptions.IgnoreCase)]
    private static partial Regex ExternalReference();
}
