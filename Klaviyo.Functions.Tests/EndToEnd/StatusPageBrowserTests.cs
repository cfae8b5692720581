using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Deque.AxeCore.Playwright;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Playwright;
using WireMock.Matchers;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using static Microsoft.Playwright.Assertions;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>
/// The local status page (spec section 11) in a real headless browser: Debian's chromium driven by Playwright, the
/// built app in local mode as a child process, a real HTTP server playing Klaviyo. The test reads the page as a person
/// would (cells, rows, messages by their visible text and accessible names), not the JSON behind it.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class StatusPageBrowserTests
{
    /// <summary>Debian's chromium (<c>apt-get install chromium</c>; <c>.ci/run</c> installs it when absent).</summary>
    public const string ChromiumPath = "/usr/bin/chromium";

    private const string KlaviyoKey = "pk_browser_test_secret";
    private const string AdminKey = "admin-key-for-the-browser-test";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task StatusPage_BacklogAndTwoDeadLetterReasons_ShowsThemAndReplaysOnlyWithTheAdminKey()
    {
        using var klaviyo = FakeKlaviyo.Start();
        // Identify events are rejected until the test accepts them (before the replay that should deliver them).
        klaviyo.Server.Given(Request.Create().WithPath("/api/profile-import").UsingPost())
            .AtPriority(10)
            .RespondWith(Response.Create().WithStatusCode(400).WithBody(FakeKlaviyo.ErrorAnswer(400, "invalid", "Invalid email address.", "/data/attributes/email")));
        // A renewal is refused for a missing scope; every other event is answered 429 for ten minutes: a backlog of retries.
        klaviyo.Server.Given(Request.Create().WithPath("/api/events").UsingPost().WithBody(new WildcardMatcher("*Subscription Renewed*")))
            .AtPriority(1)
            .RespondWith(Response.Create().WithStatusCode(403).WithBody(FakeKlaviyo.ErrorAnswer(403, "permission_denied", "The API key is missing the events:write scope.", null)));
        klaviyo.Server.Given(Request.Create().WithPath("/api/events").UsingPost())
            .AtPriority(10)
            .RespondWith(Response.Create().WithStatusCode(429).WithHeader("Retry-After", "600").WithBody(FakeKlaviyo.ErrorAnswer(429, "throttled", "Request was throttled.", null)));

        await using var app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = KlaviyoKey,
            ["Klaviyo__BaseUrl"] = klaviyo.BaseUrl,
            ["Local__AdminKey"] = AdminKey,
            ["Local__DeadLetterPath"] = Path.Combine(Path.GetTempPath(), $"klaviyo-status-{Guid.NewGuid():N}.jsonl"),
        });
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };

        await PostAsync(http, """
            [{"type":"identify","messageId":"status-id-1","userId":"u-1","traits":{"email":"ada@example.com"}},
             {"type":"identify","messageId":"status-id-2","userId":"u-2","traits":{"email":"grace@example.com"}},
             {"type":"track","messageId":"status-renewal","userId":"u-3","event":"Subscription Renewed"}]
            """);
        await app.WaitForBacklogAsync(b => (int)b["deadLettered"]! == 3, Patience, TestContext.CancellationToken);
        await PostAsync(http, """
            [{"type":"track","messageId":"status-cart-1","userId":"u-4","event":"Added to Cart"},
             {"type":"track","messageId":"status-cart-2","userId":"u-5","event":"Added to Cart"},
             {"type":"track","messageId":"status-cart-3","userId":"u-6","event":"Added to Cart"}]
            """);
        await app.WaitForBacklogAsync(b => (int)b["scheduled"]! == 3, Patience, TestContext.CancellationToken);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 1000 }, ColorScheme = ColorScheme.Light });
        var page = await context.NewPageAsync();
        var outside = new List<string>();
        page.Request += (_, request) =>
        {
            if (!request.Url.StartsWith(app.BaseUrl, StringComparison.Ordinal))
            {
                outside.Add(request.Url);
            }
        };
        var consoleErrors = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type == "error" && !message.Text.Contains("401", StringComparison.Ordinal))
            {
                consoleErrors.Add(message.Text);
            }
        };

        await page.GotoAsync(app.BaseUrl + "/");

        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Klaviyo relay · local status", Level = 1 })).ToBeVisibleAsync();
        var backlog = page.GetByRole(AriaRole.Table, new() { Name = "Events in the local queue by state" });
        await Expect(BacklogCell(backlog, "Scheduled (retry later)")).ToHaveTextAsync("3");
        await Expect(BacklogCell(backlog, "Dead-lettered")).ToHaveTextAsync("3");
        await Expect(BacklogCell(backlog, "Ready")).ToHaveTextAsync("0");

        var deadLetters = page.GetByRole(AriaRole.Table, new() { Name = "Each reason with its latest dead letter as a sample" });
        var rejected = deadLetters.GetByRole(AriaRole.Row).Filter(new() { Has = page.GetByRole(AriaRole.Rowheader, new() { Name = "KlaviyoRejected", Exact = true }) });
        var unauthorized = deadLetters.GetByRole(AriaRole.Row).Filter(new() { Has = page.GetByRole(AriaRole.Rowheader, new() { Name = "KlaviyoUnauthorized", Exact = true }) });
        await Expect(rejected.GetByRole(AriaRole.Cell).Nth(0)).ToHaveTextAsync("2");
        await Expect(rejected).ToContainTextAsync("POST /api/profile-import answered 400: invalid: Invalid email address.");
        await Expect(rejected.GetByLabel("Sample event of KlaviyoRejected")).ToContainTextAsync("\"type\": \"identify\"");
        await Expect(unauthorized.GetByRole(AriaRole.Cell).Nth(0)).ToHaveTextAsync("1");
        await Expect(unauthorized).ToContainTextAsync("answered 403");
        await Expect(unauthorized.GetByLabel("Sample event of KlaviyoUnauthorized")).ToContainTextAsync("Subscription Renewed");

        var requests = page.GetByRole(AriaRole.Table, new() { Name = "Requests per endpoint since the relay started (every try), with Klaviyo's 429 answers" });
        var createEvent = requests.GetByRole(AriaRole.Row).Filter(new() { Has = page.GetByRole(AriaRole.Rowheader, new() { Name = "CreateEvent", Exact = true }) });
        await Expect(createEvent).ToBeVisibleAsync();
        var createEventCells = await createEvent.GetByRole(AriaRole.Cell).AllInnerTextsAsync();
        var sent = int.Parse(createEventCells[0], System.Globalization.CultureInfo.InvariantCulture);
        var throttled = int.Parse(createEventCells[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.AreEqual(klaviyo.Received.Count(r => r.Path == "/api/events"), sent, "the page counts every request Klaviyo received");
        Assert.AreEqual(sent - 1, throttled, "every request but the refused renewal was answered 429");
        Assert.AreEqual(FormattableString.Invariant($"{100.0 * throttled / sent:0.0} %"), createEventCells[2]);
        await Expect(page.GetByRole(AriaRole.Img, new() { Name = "Events accepted and delivered per second over the last minutes" })).ToBeVisibleAsync();
        await Expect(page.Locator("#totals")).ToHaveTextAsync("Since start: 6 accepted, 0 delivered, 3 dead-lettered.");

        var screenshot = Path.Combine(TestContext.TestResultsDirectory ?? Path.GetTempPath(), "status-page.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        TestContext.AddResultFile(screenshot);
        if (Environment.GetEnvironmentVariable("STATUS_PAGE_SCREENSHOT") is { Length: > 0 } keep)
        {
            File.Copy(screenshot, keep, overwrite: true); // how docs/images/status-page.png is made
        }

        // axe-core (shipped in its NuGet package) on the page as a person sees it: no serious or critical violation.
        var axe = await page.RunAxe();
        var violations = axe.Violations.Where(v => v.Impact is "serious" or "critical").Select(v => $"{v.Id} ({v.Impact}): {v.Help}, {v.Nodes.Length} node(s)").ToList();
        Assert.IsEmpty(violations, string.Join("; ", violations));

        var key = page.GetByLabel("Admin key (Local:AdminKey) for replay");
        var message = page.GetByRole(AriaRole.Status);
        await key.FillAsync("not-the-admin-key-at-all");
        await page.GetByRole(AriaRole.Button, new() { Name = "Replay KlaviyoRejected" }).ClickAsync();
        await Expect(message).ToContainTextAsync("401 Unauthorized: the admin key was not accepted");
        await Expect(message).ToContainTextAsync("Nothing was replayed.");
        await Expect(BacklogCell(backlog, "Dead-lettered")).ToHaveTextAsync("3");

        klaviyo.Server.Given(Request.Create().WithPath("/api/profile-import").UsingPost())
            .AtPriority(1)
            .RespondWith(Response.Create().WithStatusCode(200).WithBody(FakeKlaviyo.ProfileAnswer("01HBROWSERPROFILE")));
        await key.FillAsync(AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Replay KlaviyoRejected" }).ClickAsync();
        await Expect(message).ToHaveTextAsync("Replayed 2 dead letter(s) of KlaviyoRejected back to the queue.");
        await Expect(rejected).ToHaveCountAsync(0, new() { Timeout = 30_000 });
        await Expect(BacklogCell(backlog, "Dead-lettered")).ToHaveTextAsync("1", new() { Timeout = 30_000 });
        await Expect(unauthorized).ToHaveCountAsync(1);
        await Expect(page.Locator("#totals")).ToContainTextAsync("2 delivered", new() { Timeout = 30_000 });
        Assert.AreEqual(4, klaviyo.Received.Count(r => r.Path == "/api/profile-import"), "the replayed identify events reached Klaviyo again");

        var html = await page.ContentAsync();
        Assert.DoesNotContain(AdminKey, html, "the typed key stays in the field's value, never in the page's markup");
        Assert.DoesNotContain(KlaviyoKey, html);
        Assert.IsEmpty(outside, "the page loaded nothing from elsewhere: " + string.Join(", ", outside));
        Assert.IsEmpty(consoleErrors, "no script error: " + string.Join(" | ", consoleErrors));
        await context.CloseAsync();
        Assert.AreEqual(0, await app.StopAsync(Patience));
    }

    private static ILocator BacklogCell(ILocator table, string state) =>
        table.GetByRole(AriaRole.Row).Filter(new() { Has = table.Page.GetByRole(AriaRole.Rowheader, new() { Name = state, Exact = true }) }).GetByRole(AriaRole.Cell);

    private async Task PostAsync(HttpClient http, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync("/api/events", content, TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode, await response.Content.ReadAsStringAsync(TestContext.CancellationToken));
    }
}
