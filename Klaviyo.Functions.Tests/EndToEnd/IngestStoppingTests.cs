using System.Net;
using System.Text;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>Issue 9, item 6: a stopping app (local mode, Ctrl+C) answers new ingest requests 503 with Retry-After
/// during a short drain instead of refusing connections.</summary>
[TestClass]
[DoNotParallelize]
public sealed class IngestStoppingTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task LocalMode_RequestDuringShutdown_Answers503WithRetryAfterBeforeTheListenerCloses()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        var deadLetters = Path.Combine(Path.GetTempPath(), $"klaviyo-stopping-{Guid.NewGuid():N}.jsonl");
        await using var app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = "pk_stopping_secret",
            ["Klaviyo__BaseUrl"] = klaviyo.BaseUrl,
            ["Local__DeadLetterPath"] = deadLetters,
            ["Ingest__RetryAfter"] = "00:00:04",
        }, Patience);
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        using (var before = await PostAsync(http, "before"))
        {
            Assert.AreEqual(HttpStatusCode.Accepted, before.StatusCode);
        }

        var stopped = app.StopAsync(Patience);
        HttpResponseMessage? busy = null;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (busy is null && DateTime.UtcNow < deadline)
        {
            var response = await PostAsync(http, "during-" + Guid.NewGuid().ToString("N"));
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
            {
                busy = response;
            }
            else
            {
                Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode, "accepted until the stop begins");
                response.Dispose();
            }
        }

        Assert.IsNotNull(busy, "a 503 answer during the drain, not a refused connection");
        using (busy)
        {
            Assert.AreEqual("application/problem+json", busy.Content.Headers.ContentType?.MediaType);
            Assert.AreEqual(TimeSpan.FromSeconds(4), busy.Headers.RetryAfter?.Delta);
            Assert.Contains("stopping", await busy.Content.ReadAsStringAsync(TestContext.CancellationToken));
        }
        Assert.AreEqual(0, await stopped);
        Assert.Contains("0 still queued", app.Output, "what was accepted before the stop was delivered");
    }

    private async Task<HttpResponseMessage> PostAsync(HttpClient http, string messageId) =>
        await http.PostAsync("/api/events", new StringContent($$"""{"type":"track","messageId":"{{messageId}}","userId":"u-1","event":"E"}""", Encoding.UTF8, "application/json"), TestContext.CancellationToken);
}
