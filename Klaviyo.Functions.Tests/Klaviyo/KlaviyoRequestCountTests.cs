using System.Diagnostics.Metrics;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Klaviyo.Functions.Tests.Klaviyo;

/// <summary><c>klaviyo.relay.klaviyo.requests</c>: every try that reached Klaviyo, by endpoint and status, which the local
/// status page and the Azure workbook compute the 429 share from.</summary>
[TestClass]
public sealed class KlaviyoRequestCountTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task Requests_InCallRetryAfter503_CountsEachTryWithItsStatus()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerInTurnWithHeaders("/api/events",
            (503, null, new Dictionary<string, string> { ["Retry-After"] = "0" }),
            (202, null, null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        using var requests = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), RelayMetrics.MeterName, RelayMetrics.KlaviyoRequestsName);

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        Assert.IsInstanceOfType<KlaviyoResponse.Success>(response);
        Assert.AreSequenceEqual(
            ["CreateEvent 503", "CreateEvent 202"],
            requests.GetMeasurementSnapshot().Select(m => $"{m.Tags["endpoint"]} {m.Tags["http.response.status_code"]}").ToList());
    }

    [TestMethod]
    public async Task Requests_429ThenHeldBack_CountsOnlyWhatReachedKlaviyo()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 429, null, new Dictionary<string, string> { ["Retry-After"] = "120" });
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        using var requests = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), RelayMetrics.MeterName, RelayMetrics.KlaviyoRequestsName);

        await host.Client.SendAsync(Plans.Event("a"), TestContext.CancellationToken);
        var held = await host.Client.SendAsync(Plans.Event("b"), TestContext.CancellationToken);

        Assert.IsInstanceOfType<KlaviyoResponse.HeldBack>(held);
        var measurement = requests.GetMeasurementSnapshot().Single();
        Assert.AreEqual(429, measurement.Tags["http.response.status_code"]);
        Assert.AreEqual("CreateEvent", measurement.Tags["endpoint"]);
        Assert.HasCount(1, klaviyo.Received);
    }

    [TestMethod]
    public async Task Requests_ConnectionRefused_CountedWithoutAStatus()
    {
        using var host = RelayTestHost.Create($"http://127.0.0.1:{FakeKlaviyo.FreePort()}", new Dictionary<string, string?> { ["Relay:MaxInCallRetries"] = "0" });
        using var requests = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), RelayMetrics.MeterName, RelayMetrics.KlaviyoRequestsName);

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        Assert.IsInstanceOfType<KlaviyoResponse.Transient>(response);
        Assert.IsNull(requests.GetMeasurementSnapshot().Single().Tags["http.response.status_code"]);
    }
}
