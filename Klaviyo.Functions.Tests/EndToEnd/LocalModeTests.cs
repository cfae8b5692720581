using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>
/// The built app in local mode (<c>--local</c>) as a child process on a free port, with a real HTTP server on
/// 127.0.0.1 playing Klaviyo: events go in over HTTP, and the tests look at what Klaviyo received and what was
/// written to the dead-letter file.
/// </summary>
[TestClass]
public sealed class LocalModeTests
{
    private const string Key = "pk_e2e_secret_key";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task LocalMode_BatchOfIdentifyTrackPage_KlaviyoReceivesEveryCallWithHeaders()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("01HE2EPROFILE"))
            .Answer("/api/events", 202)
            .Answer("/api/lists/LIST1/relationships/profiles", 204);
        var deadLetters = TempFile();
        await using var app = await StartAsync(klaviyo.BaseUrl, deadLetters, new() { ["Klaviyo__ListId"] = "LIST1", ["Klaviyo__SendPageAsTrack"] = "true" });

        using var response = await PostAsync(app, "/api/events", """
            [{"type":"identify","messageId":"e2e-1","userId":"u-1","traits":{"email":"jane@example.com","firstName":"Jane"}},
             {"type":"track","messageId":"e2e-2","userId":"u-1","event":"Order Completed","properties":{"revenue":42.5,"currency":"EUR"}},
             {"type":"page","messageId":"e2e-3","userId":"u-1","name":"Home"}]
            """);
        Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode);

        var received = await WaitForAsync(klaviyo, 4);
        foreach (var call in received)
        {
            Assert.AreEqual("Klaviyo-API-Key " + Key, call.Headers["Authorization"]);
            Assert.AreEqual("2026-07-15", call.Headers["revision"]);
            Assert.Contains("application/vnd.api+json", call.Headers["Accept"]);
            Assert.Contains("application/vnd.api+json", call.Headers["Content-Type"]);
        }
        var listAdd = JsonNode.Parse(received.Single(r => r.Path == "/api/lists/LIST1/relationships/profiles").Body)!;
        Assert.AreEqual("01HE2EPROFILE", (string?)listAdd["data"]![0]!["id"]);
        var events = received.Where(r => r.Path == "/api/events").Select(r => JsonNode.Parse(r.Body)!["data"]!["attributes"]!).ToList();
        var order = events.Single(e => (string?)e["unique_id"] == "e2e-2");
        Assert.AreEqual("Order Completed", (string?)order["metric"]!["data"]!["attributes"]!["name"]);
        Assert.AreEqual(42.5, (double)order["value"]!);
        Assert.AreEqual("EUR", (string?)order["value_currency"]);
        Assert.AreEqual("Viewed Home page", (string?)events.Single(e => (string?)e["unique_id"] == "e2e-3")["metric"]!["data"]!["attributes"]!["name"]);

        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.Contains("3 delivered, 0 skipped, 0 dead-lettered, 0 still queued", app.Output);
        Assert.IsFalse(File.Exists(deadLetters), "nothing was dead-lettered");
        Assert.DoesNotContain(Key, app.Output);
    }

    [TestMethod]
    public async Task LocalMode_UnsubscribeAndRemoval_KlaviyoReceivesTheUnsubscribeJobAndTheListDelete()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("01HE2EPROFILE"))
            .Answer("/api/profile-subscription-bulk-delete-jobs", 202)
            .AnswerDelete("/api/lists/LIST1/relationships/profiles", 204);
        var deadLetters = TempFile();
        await using var app = await StartAsync(klaviyo.BaseUrl, deadLetters, new() { ["Klaviyo__ListId"] = "LIST1" });

        using var response = await PostAsync(app, "/api/events", """
            [{"type":"identify","messageId":"e2e-unsub","userId":"u-1","traits":{"email":"jane@example.com","properties":{"subscribe":"false"}}},
             {"type":"identify","messageId":"e2e-remove","userId":"u-2","traits":{"email":"john@example.com","properties":{"removeFromList":true}}}]
            """);
        Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode);

        var received = await WaitForAsync(klaviyo, 4);
        var unsubscribe = JsonNode.Parse(received.Single(r => r.Path == "/api/profile-subscription-bulk-delete-jobs").Body)!["data"]!;
        Assert.AreEqual("LIST1", (string?)unsubscribe["relationships"]!["list"]!["data"]!["id"]);
        var profile = unsubscribe["attributes"]!["profiles"]!["data"]![0]!["attributes"]!;
        Assert.AreEqual("jane@example.com", (string?)profile["email"]);
        Assert.AreEqual("UNSUBSCRIBED", (string?)profile["subscriptions"]!["email"]!["marketing"]!["consent"]);
        var removal = received.Single(r => r.Method == "DELETE");
        Assert.AreEqual("/api/lists/LIST1/relationships/profiles", removal.Path);
        Assert.AreEqual("01HE2EPROFILE", (string?)JsonNode.Parse(removal.Body)!["data"]![0]!["id"]);

        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.Contains("2 delivered, 0 skipped, 0 dead-lettered, 0 still queued", app.Output);
    }

    [TestMethod]
    public async Task LocalMode_KlaviyoDownOnTheLastAttempt_DeadLettersRetriesExhaustedToTheFile()
    {
        var down = $"http://127.0.0.1:{FakeKlaviyo.FreePort()}";
        var deadLetters = TempFile();
        await using var app = await StartAsync(down, deadLetters, new() { ["Relay__MaxAttempts"] = "1" });

        using var response = await PostAsync(app, "/api/events", """{"type":"track","messageId":"e2e-down","userId":"u-3","event":"Signed Up"}""");
        Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode);

        var line = await WaitForDeadLetterAsync(deadLetters);
        Assert.AreEqual("e2e-down", line.GetProperty("messageId").GetString());
        Assert.AreEqual("RetriesExhausted", line.GetProperty("reason").GetString());
        Assert.StartsWith("1 attempt(s) failed; last: POST /api/events: connection failed", line.GetProperty("description").GetString()!);
        Assert.AreEqual(1, line.GetProperty("attempt").GetInt32());
        Assert.AreEqual("Signed Up", line.GetProperty("event").GetProperty("event").GetString());
        Assert.IsTrue(line.TryGetProperty("deadLetteredAt", out _));
        Assert.DoesNotContain(Key, File.ReadAllText(deadLetters));
        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.Contains("0 delivered, 0 skipped, 1 dead-lettered, 0 still queued", app.Output);
    }

    [TestMethod]
    public async Task LocalMode_StoppedWhileKlaviyoHoldsTheEvent_KeepsItForTheNextStartWhichDeliversIt()
    {
        var database = TempFile() + ".db";
        var deadLetters = TempFile();
        using (var slow = FakeKlaviyo.Start().Answer("/api/events", 202, delay: TimeSpan.FromSeconds(20)))
        {
            await using var app = await StartAsync(slow.BaseUrl, deadLetters, new() { ["Local__DatabasePath"] = database, ["Local__ShutdownGrace"] = "00:00:00.5" });
            using var response = await PostAsync(app, "/api/events", """{"type":"track","messageId":"e2e-stop","userId":"u-4","event":"Signed Up"}""");
            Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode);
            await WaitForHealthAsync(app, backlog => (int)backlog["leased"]! == 1);

            Assert.AreEqual(0, await app.StopAsync(Patience));
            Assert.Contains("0 delivered, 0 skipped, 0 dead-lettered, 1 still queued", app.Output);
            Assert.IsFalse(File.Exists(deadLetters), "nothing is written out as Shutdown any more");
        }

        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        await using var restarted = await StartAsync(klaviyo.BaseUrl, deadLetters, new() { ["Local__DatabasePath"] = database });
        var received = await WaitForAsync(klaviyo, 1);
        Assert.Contains("\"unique_id\":\"e2e-stop\"", received.Single().Body);
        Assert.AreEqual(0, await restarted.StopAsync(Patience));
        Assert.Contains("1 delivered, 0 skipped, 0 dead-lettered, 0 still queued", restarted.Output);
    }

    [TestMethod]
    public async Task LocalMode_DeadLetterFileNotWritable_WritesTheDeadLetterToStandardError()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 400, FakeKlaviyo.ErrorAnswer(400, "invalid", "Invalid input.", null));
        var directory = Directory.CreateTempSubdirectory("klaviyo-e2e-").FullName; // a folder cannot be appended to
        await using var app = await StartAsync(klaviyo.BaseUrl, directory);

        using var response = await PostAsync(app, "/api/events", """{"type":"track","messageId":"e2e-nofile","userId":"u-8","event":"Signed Up"}""");
        Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode);

        var deadline = DateTime.UtcNow + Patience;
        while (!app.Output.Contains("\"reason\":\"KlaviyoRejected\"", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, TestContext.CancellationToken);
        }
        Assert.Contains("\"messageId\":\"e2e-nofile\",\"reason\":\"KlaviyoRejected\"", app.Output);
        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.Contains("1 dead-lettered", app.Output);
    }

    [TestMethod]
    public async Task LocalMode_InvalidEvent_Answers400AndKlaviyoReceivesNothing()
    {
        using var klaviyo = FakeKlaviyo.Start();
        await using var app = await StartAsync(klaviyo.BaseUrl, TempFile());

        using var response = await PostAsync(app, "/api/events", """[{"type":"track","userId":"u-6","event":"Ok"},{"type":"track","userId":"u-6"}]""");

        Assert.AreEqual(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.AreEqual("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.CancellationToken))!;
        Assert.AreEqual(1, (int)problem["errors"]![0]!["index"]!);
        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.IsEmpty(klaviyo.Received);
    }

    [TestMethod]
    public async Task LocalMode_WithSigningSecret_RefusesUnsignedAndAcceptsSignedWithoutAFunctionKey()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        await using var app = await StartAsync(klaviyo.BaseUrl, TempFile(), new() { ["Ingest__SigningSecret"] = "local-signing-secret" });
        const string body = """{"type":"track","messageId":"e2e-signed","userId":"u-7","event":"Signed Up"}""";

        using var unsigned = await PostAsync(app, "/api/events", body);
        Assert.AreEqual(HttpStatusCode.Unauthorized, unsigned.StatusCode);

        var signature = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes("local-signing-secret"), Encoding.UTF8.GetBytes(body)));
        using var signed = await PostAsync(app, "/api/events", body, signature);
        Assert.AreEqual(HttpStatusCode.Accepted, signed.StatusCode);
        Assert.AreEqual("/api/events", (await WaitForAsync(klaviyo, 1)).Single().Path);
    }

    private async Task<LocalAppProcess> StartAsync(string klaviyoBaseUrl, string deadLetters, Dictionary<string, string>? extra = null)
    {
        var settings = new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = Key,
            ["Klaviyo__BaseUrl"] = klaviyoBaseUrl,
            ["Local__DeadLetterPath"] = deadLetters,
            ["Local__DatabasePath"] = deadLetters + ".db",
            ["Relay__InCallRetryDelay"] = "00:00:00.1",
        };
        foreach (var (name, value) in extra ?? [])
        {
            settings[name] = value;
        }
        return await LocalAppProcess.StartAsync(settings, Patience);
    }

    private async Task<HttpResponseMessage> PostAsync(LocalAppProcess app, string path, string body, string? signature = null)
    {
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (signature is not null)
        {
            request.Headers.Add("X-Signature", signature);
        }
        return await http.SendAsync(request, TestContext.CancellationToken);
    }

    private async Task<IReadOnlyList<ReceivedRequest>> WaitForAsync(FakeKlaviyo klaviyo, int count)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (klaviyo.Received.Count < count && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, TestContext.CancellationToken);
        }
        return klaviyo.Received;
    }

    private Task<JsonNode> WaitForHealthAsync(LocalAppProcess app, Func<JsonNode, bool> backlogCondition) =>
        app.WaitForBacklogAsync(backlogCondition, Patience, TestContext.CancellationToken);

    private async Task<JsonElement> WaitForDeadLetterAsync(string path)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(path) && File.ReadAllLines(path) is [var first, ..] && first.EndsWith('}'))
            {
                return JsonDocument.Parse(first).RootElement.Clone();
            }
            await Task.Delay(50, TestContext.CancellationToken);
        }
        Assert.Fail($"No dead letter was written to {path} within {Patience}.");
        return default;
    }

    private string TempFile() => Path.Combine(Path.GetTempPath(), $"klaviyo-e2e-{TestContext.TestName}-{Guid.NewGuid():N}.jsonl");
}
