using System.Net;
using System.Text;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>
/// Issue 18 item 6: the built app in local mode with every log category at its most talkative (ASP.NET Core at Trace,
/// the common debugging step at Information included) is sent keys in the URL — right, wrong, upper-case and
/// percent-encoded parameter names, and inside a request line Kestrel refuses — and no key may reach its output.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class KeysNeverLoggedTests
{
    private const string ApiKey = "ApiKeyNeverLogged-7f3a9c1e5b";
    private const string AdminKey = "AdminKeyNeverLogged-2d8e4b6a0c";
    private const string WrongKey = "WrongKeyNeverLogged-9b1d3f5e7a";

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow("Information")]
    [DataRow("Trace")]
    public async Task KeysInTheUrl_NeverReachTheLog_WithAspNetCoreLogging(string level)
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        await using var app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = "pk_keys_never_logged",
            ["Klaviyo__BaseUrl"] = klaviyo.BaseUrl,
            ["Local__DeadLetterPath"] = Path.Combine(Path.GetTempPath(), $"klaviyo-keys-{Guid.NewGuid():N}.jsonl"),
            ["Local__ApiKey"] = ApiKey,
            ["Local__AdminKey"] = AdminKey,
            ["Logging__LogLevel__Default"] = level,
            ["Logging__LogLevel__Microsoft.AspNetCore"] = level,
        });
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        var track = """{"type":"track","messageId":"keys-1","userId":"u-1","event":"E"}""";

        Assert.AreEqual(HttpStatusCode.Accepted, await PostAsync(http, $"/api/events?code={ApiKey}", track));
        Assert.AreEqual(HttpStatusCode.Accepted, await PostAsync(http, $"/api/v1/track?x=1&CODE={ApiKey}", """{"userId":"u-1","event":"E","messageId":"keys-2"}"""));
        Assert.AreEqual(HttpStatusCode.Accepted, await PostAsync(http, $"/api/events?co%64e={ApiKey}", track));
        Assert.AreEqual(HttpStatusCode.Unauthorized, await PostAsync(http, $"/api/events?code={WrongKey}", track));
        Assert.AreEqual(HttpStatusCode.OK, await PostAsync(http, $"/api/dead-letters/replay?max=1&code={AdminKey}", ""));
        var badLine = Encoding.ASCII.GetBytes($"POST /api/ev ents?code={ApiKey} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        Assert.AreEqual(400, (await HostileInputTests.SendRawAsync(app.BaseUrl, badLine, TestContext.CancellationToken)).Status);
        await Task.Delay(500, TestContext.CancellationToken); // the console logger writes on its own thread

        Assert.AreEqual(0, await app.StopAsync(TimeSpan.FromSeconds(30)));
        var output = app.Output;
        Assert.Contains("Request starting", output, "ASP.NET Core's request lines are on at " + level);
        Assert.Contains("code=***", output, "the key parameter is still visible, its value masked");
        foreach (var key in new[] { ApiKey, AdminKey, WrongKey })
        {
            Assert.DoesNotContain(key, output, "a key reached the log:\n" + output);
        }
    }

    private async Task<HttpStatusCode> PostAsync(HttpClient http, string path, string body)
    {
        using var response = await http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"), TestContext.CancellationToken);
        return response.StatusCode;
    }
}
