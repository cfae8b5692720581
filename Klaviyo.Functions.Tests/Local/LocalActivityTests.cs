using System.Diagnostics.Metrics;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Local;
using Klaviyo.Functions.Relay;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Klaviyo.Functions.Tests.Local;

/// <summary>The status page's rates and Klaviyo counts, read from the relay's own meter.</summary>
[TestClass]
public sealed class LocalActivityTests
{
    [TestMethod]
    public void Snapshot_CountsPerSecondOfThisAppsMeterOnly()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 7, 5, 0, 0, TimeSpan.Zero));
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var other = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var activity = new LocalActivity(services.GetRequiredService<IMeterFactory>(), time);
        var metrics = new RelayMetrics(services.GetRequiredService<IMeterFactory>());
        var ingest = new IngestMetrics(services.GetRequiredService<IMeterFactory>());
        var otherApp = new RelayMetrics(other.GetRequiredService<IMeterFactory>());

        ingest.Accepted(100);
        metrics.Delivered();
        time.Advance(TimeSpan.FromSeconds(1));
        metrics.Delivered();
        metrics.Delivered();
        metrics.DeadLettered(DeadLetterReason.KlaviyoRejected);
        metrics.KlaviyoRequestSent(KlaviyoEndpoint.CreateEvent, 202);
        metrics.KlaviyoRequestSent(KlaviyoEndpoint.CreateEvent, 429);
        metrics.KlaviyoRequestSent(KlaviyoEndpoint.ProfileImport, null);
        otherApp.Delivered(); // another app in the same process (the tests host several)
        otherApp.KlaviyoRequestSent(KlaviyoEndpoint.CreateEvent, 429);

        var snapshot = activity.Snapshot();

        Assert.HasCount(LocalActivity.WindowSeconds, snapshot.Delivered);
        Assert.AreSequenceEqual(new long[] { 1, 2 }, snapshot.Delivered[^2..]);
        Assert.AreSequenceEqual(new long[] { 100, 0 }, snapshot.Accepted[^2..]);
        Assert.AreSequenceEqual(new long[] { 0, 1 }, snapshot.DeadLettered[^2..]);
        Assert.AreEqual((100L, 3L, 1L), (snapshot.AcceptedTotal, snapshot.DeliveredTotal, snapshot.DeadLetteredTotal));
        Assert.AreSequenceEqual(
            new[] { new EndpointRequestCount("CreateEvent", 2, 1, 0), new EndpointRequestCount("ProfileImport", 1, 0, 1) },
            snapshot.Klaviyo.ToArray());
    }

    [TestMethod]
    public void Snapshot_SecondsOlderThanTheWindow_DropOutButStayInTheTotals()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 7, 5, 0, 0, TimeSpan.Zero));
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var activity = new LocalActivity(services.GetRequiredService<IMeterFactory>(), time);
        var metrics = new RelayMetrics(services.GetRequiredService<IMeterFactory>());

        metrics.Delivered();
        time.Advance(TimeSpan.FromSeconds(LocalActivity.WindowSeconds - 1));
        Assert.AreEqual(1, activity.Snapshot().Delivered[0], "the first second of the window");
        time.Advance(TimeSpan.FromSeconds(1));
        metrics.Delivered(); // lands in the same ring slot as the first, a window later

        var snapshot = activity.Snapshot();

        Assert.AreEqual(1, snapshot.Delivered.Sum());
        Assert.AreEqual(1, snapshot.Delivered[^1]);
        Assert.AreEqual(2, snapshot.DeliveredTotal);
    }
}
