using System.Text;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Klaviyo;

[TestClass]
public sealed class KlaviyoClientTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task SendAsync_Any_SendsSpecHeadersAndBodyOnce()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var request = Plans.Event("m-9");

        var response = await host.Client.SendAsync(request, TestContext.CancellationToken);

        Assert.AreEqual(new KlaviyoResponse.Success(202, null), response);
        var received = klaviyo.Received.Single();
        Assert.AreEqual("POST", received.Method);
        Assert.AreEqual($"Klaviyo-API-Key {RelayTestHost.ApiKey}", received.Headers["Authorization"]);
        Assert.AreEqual("2026-07-15", received.Headers["revision"]);
        Assert.AreEqual("application/vnd.api+json", received.Headers["Accept"]);
        Assert.AreEqual("application/vnd.api+json", received.Headers["Content-Type"]);
        Assert.AreEqual(Encoding.UTF8.GetString(request.Body.Span), received.Body);
    }

    [TestMethod]
    public async Task SendAsync_ProfileImportAnswer_ReturnsDataId()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("01PROFILE"));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var response = await host.Client.SendAsync(Plans.IdentifyWithList().Steps[0].Build(), TestContext.CancellationToken);

        Assert.AreEqual(new KlaviyoResponse.Success(200, "01PROFILE"), response);
    }

    [TestMethod]
    public async Task SendAsync_500Then200_SucceedsWithinTheCall()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerInTurn("/api/events", (500, null), (202, null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        Assert.IsInstanceOfType<KlaviyoResponse.Success>(response);
        Assert.HasCount(2, klaviyo.Received);
    }

    [TestMethod]
    public async Task SendAsync_Persistent503_TransientAfterTwoInCallRetries()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 503);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        var transient = Assert.IsInstanceOfType<KlaviyoResponse.Transient>(response);
        Assert.AreEqual(503, transient.StatusCode);
        Assert.HasCount(3, klaviyo.Received);
    }

    [TestMethod]
    [DataRow(400)]
    [DataRow(404)]
    [DataRow(409)]
    [DataRow(410)]
    [DataRow(422)]
    public async Task SendAsync_PermanentStatus_RejectedWithoutRetry(int status)
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", status, FakeKlaviyo.ErrorAnswer(status, "invalid", "Invalid input.", "/data/attributes/profile"));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        var rejected = Assert.IsInstanceOfType<KlaviyoResponse.Rejected>(response);
        Assert.AreEqual(status, rejected.StatusCode);
        Assert.AreEqual(new KlaviyoError("invalid", "Error", "Invalid input.", "/data/attributes/profile", null), rejected.Errors.Single());
        Assert.HasCount(1, klaviyo.Received);
    }

    [TestMethod]
    [DataRow(401)]
    [DataRow(403)]
    public async Task SendAsync_401Or403_UnauthorizedWithoutRetry(int status)
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", status, FakeKlaviyo.ErrorAnswer(status, "not_authenticated", "Incorrect authentication credentials.", null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        var unauthorized = Assert.IsInstanceOfType<KlaviyoResponse.Unauthorized>(response);
        Assert.AreEqual(status, unauthorized.StatusCode);
        Assert.HasCount(1, klaviyo.Received);
    }

    [TestMethod]
    public async Task SendAsync_429WithRetryAfterBeyondBudget_ReturnsRetryAfterWithoutWaiting()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 429, FakeKlaviyo.ErrorAnswer(429, "throttled", "Request was throttled. Expected available in 120 seconds.", null), new Dictionary<string, string> { ["Retry-After"] = "120" });
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        var transient = Assert.IsInstanceOfType<KlaviyoResponse.Transient>(response);
        Assert.AreEqual(429, transient.StatusCode);
        Assert.AreEqual(TimeSpan.FromSeconds(120), transient.RetryAfter);
        Assert.HasCount(1, klaviyo.Received);
    }

    [TestMethod]
    public async Task SendAsync_429WithShortRetryAfter_WaitsItOutThenSucceeds()
    {
        using var klaviyo = FakeKlaviyo.Start();
        klaviyo.Server.Given(WireMock.RequestBuilders.Request.Create().WithPath("/api/events").UsingPost()).InScenario("t").WillSetStateTo("ok")
            .RespondWith(WireMock.ResponseBuilders.Response.Create().WithStatusCode(429).WithHeader("Retry-After", "1"));
        klaviyo.Server.Given(WireMock.RequestBuilders.Request.Create().WithPath("/api/events").UsingPost()).InScenario("t").WhenStateIs("ok")
            .RespondWith(WireMock.ResponseBuilders.Response.Create().WithStatusCode(202));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var start = host.Time!.GetUtcNow();

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        Assert.IsInstanceOfType<KlaviyoResponse.Success>(response);
        Assert.HasCount(2, klaviyo.Received);
        Assert.IsGreaterThanOrEqualTo(TimeSpan.FromSeconds(1), host.Time.GetUtcNow() - start, "the second try came before Retry-After");
    }

    [TestMethod]
    public async Task SendAsync_NoAnswerWithinAttemptTimeout_TransientAfterThreeTries()
    {
        using var klaviyo = FaultyKlaviyo.Start().Then("/api/events", new Fault.SlowHeaders(TimeSpan.FromMinutes(10)), times: 3);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, new Dictionary<string, string?> { ["Relay:AttemptTimeout"] = "00:00:02" });

        var sending = host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);
        for (var tries = 1; tries <= 3; tries++)
        {
            await klaviyo.WaitForCountAsync("/api/events", tries, TestContext.CancellationToken);
            host.Time!.Advance(TimeSpan.FromSeconds(2));
        }
        var response = await sending;

        var transient = Assert.IsInstanceOfType<KlaviyoResponse.Transient>(response);
        Assert.IsNull(transient.StatusCode);
        Assert.Contains("timed out", transient.Description);
        Assert.AreEqual(3, klaviyo.Count("/api/events"));
    }

    [TestMethod]
    public async Task SendAsync_ConnectionRefused_Transient()
    {
        using var host = RelayTestHost.Create($"http://127.0.0.1:{FakeKlaviyo.FreePort()}");

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        var transient = Assert.IsInstanceOfType<KlaviyoResponse.Transient>(response);
        Assert.IsNull(transient.StatusCode);
        Assert.Contains("connection failed", transient.Description);
    }

    [TestMethod]
    public async Task SendAsync_Redirect_RejectedAndNotFollowed()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 302, headers: new Dictionary<string, string> { ["Location"] = "/elsewhere" });
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        Assert.AreEqual(302, Assert.IsInstanceOfType<KlaviyoResponse.Rejected>(response).StatusCode);
        Assert.AreSequenceEqual(["/api/events"], klaviyo.ReceivedPaths);
    }

    [TestMethod]
    public async Task SendAsync_BaseUrlWithPath_KeepsThePrefix()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/proxy/api/events", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl + "/proxy/");

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        Assert.IsInstanceOfType<KlaviyoResponse.Success>(response);
    }

    [TestMethod]
    public async Task SendAsync_ErrorEchoingTheKey_RedactsIt()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 400, FakeKlaviyo.ErrorAnswer(400, "invalid", $"key {RelayTestHost.ApiKey} is odd", null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        Assert.AreEqual("key *** is odd", Assert.IsInstanceOfType<KlaviyoResponse.Rejected>(response).Errors.Single().Detail);
    }
}
