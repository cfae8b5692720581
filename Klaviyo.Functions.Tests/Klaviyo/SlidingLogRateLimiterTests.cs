using System.Threading.RateLimiting;
using Klaviyo.Functions.Klaviyo;
using Microsoft.Extensions.Time.Testing;

namespace Klaviyo.Functions.Tests.Klaviyo;

[TestClass]
public sealed class SlidingLogRateLimiterTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 28, 12, 0, 0, 400, TimeSpan.Zero); // not on a second boundary

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void Limiter_UnderConstantDemand_NeverLetsMoreThanTheLimitIntoAnyWindowWhereverItStarts()
    {
        var time = new FakeTimeProvider(Start);
        using var limiter = new SlidingLogRateLimiter(10, TimeSpan.FromSeconds(1), 150, TimeSpan.FromSeconds(60), time);
        var admitted = new List<DateTimeOffset>();
        var random = new Random(7);

        for (var elapsed = TimeSpan.Zero; elapsed < TimeSpan.FromMinutes(5); elapsed = time.GetUtcNow() - Start)
        {
            using var lease = limiter.AttemptAcquire();
            if (lease.IsAcquired)
            {
                admitted.Add(time.GetUtcNow());
            }
            time.Advance(TimeSpan.FromMilliseconds(random.Next(1, 40)));
        }

        // Any window of the length, starting at any admitted call (the worst case for a fixed window), holds at most the limit.
        for (var i = 0; i < admitted.Count; i++)
        {
            Assert.IsLessThanOrEqualTo(10, admitted.Skip(i).TakeWhile(t => t - admitted[i] < TimeSpan.FromSeconds(1)).Count());
            Assert.IsLessThanOrEqualTo(150, admitted.Skip(i).TakeWhile(t => t - admitted[i] < TimeSpan.FromSeconds(60)).Count());
        }
        // Clock-aligned windows, as Klaviyo's are documented: full minutes get the whole steady limit.
        var perClockMinute = admitted.GroupBy(t => t.ToUnixTimeSeconds() / 60).Select(g => g.Count()).ToList();
        Assert.IsTrue(perClockMinute.All(c => c <= 150));
        Assert.HasCount(750, admitted, "under constant demand five minutes hold five windows' worth");
    }

    [TestMethod]
    public void Limiter_RefusedByTheSteadyWindow_SaysWhenTheOldestCallLeavesIt()
    {
        var time = new FakeTimeProvider(Start);
        using var limiter = new SlidingLogRateLimiter(100, TimeSpan.FromSeconds(1), 3, TimeSpan.FromSeconds(60), time);
        for (var i = 0; i < 3; i++)
        {
            Assert.IsTrue(limiter.AttemptAcquire().IsAcquired);
            time.Advance(TimeSpan.FromSeconds(10));
        }

        using var refused = limiter.AttemptAcquire();

        Assert.IsFalse(refused.IsAcquired);
        Assert.IsTrue(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
        Assert.AreEqual(TimeSpan.FromSeconds(30), retryAfter);
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.IsTrue(limiter.AttemptAcquire().IsAcquired);
    }

    [TestMethod]
    public void Limiter_RefusedCalls_TakeNoSlot()
    {
        var time = new FakeTimeProvider(Start);
        using var limiter = new SlidingLogRateLimiter(1, TimeSpan.FromSeconds(1), 5, TimeSpan.FromSeconds(60), time);

        Assert.IsTrue(limiter.AttemptAcquire().IsAcquired);
        for (var i = 0; i < 20; i++)
        {
            Assert.IsFalse(limiter.AttemptAcquire().IsAcquired, "the burst window holds one call");
        }
        for (var i = 0; i < 4; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            Assert.IsTrue(limiter.AttemptAcquire().IsAcquired, "twenty refusals must not have used the minute's five slots");
        }
    }

    [TestMethod]
    public async Task AcquireAsync_OverTheBurstLimit_WaitsForTheWindowAndRefusesWaitersBeyondTheLimit()
    {
        var time = new FakeTimeProvider(Start);
        using var limiter = new SlidingLogRateLimiter(2, TimeSpan.FromSeconds(1), 100, TimeSpan.FromSeconds(60), time);
        Assert.IsTrue((await limiter.AcquireAsync(1, TestContext.CancellationToken)).IsAcquired);
        Assert.IsTrue((await limiter.AcquireAsync(1, TestContext.CancellationToken)).IsAcquired);

        var first = limiter.AcquireAsync(1, TestContext.CancellationToken).AsTask();
        var second = limiter.AcquireAsync(1, TestContext.CancellationToken).AsTask();
        using var third = await limiter.AcquireAsync(1, TestContext.CancellationToken);

        Assert.IsFalse(third.IsAcquired, "only as many callers as the burst limit may wait");
        Assert.IsFalse(first.IsCompleted || second.IsCompleted, "the burst window is full, so the waiters wait");
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.IsTrue((await first).IsAcquired);
        Assert.IsTrue((await second).IsAcquired);
    }
}
