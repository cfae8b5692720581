using Klaviyo.Functions.Relay;

namespace Klaviyo.Functions.Tests.Relay;

[TestClass]
public sealed class RetryScheduleTests
{
    [TestMethod]
    [DataRow(1, 30)]
    [DataRow(2, 120)]
    [DataRow(3, 600)]
    [DataRow(4, 1800)]
    [DataRow(5, 3600)]
    [DataRow(6, 7200)]
    [DataRow(9, 7200)]
    public void Compute_WithoutJitterOrRetryAfter_FollowsTheSpecSteps(int failedAttempt, int expectedSeconds)
    {
        Assert.AreEqual(TimeSpan.FromSeconds(expectedSeconds), RetrySchedule.Compute(failedAttempt, null, 0.5));
    }

    [TestMethod]
    [DataRow(0.0, 24)]
    [DataRow(0.999999, 36)]
    public void Compute_AtJitterExtremes_StaysWithinTwentyPercent(double random, int expectedSeconds)
    {
        var delay = RetrySchedule.Compute(1, null, random);
        Assert.AreEqual(expectedSeconds, delay.TotalSeconds, 0.01);
    }

    [TestMethod]
    public void Compute_WithRetryAfterLongerThanStep_UsesRetryAfter()
    {
        Assert.AreEqual(TimeSpan.FromSeconds(300), RetrySchedule.Compute(1, TimeSpan.FromSeconds(300), 0.9));
    }

    [TestMethod]
    public void Compute_WithRetryAfterShorterThanStep_UsesStep()
    {
        Assert.AreEqual(TimeSpan.FromMinutes(10), RetrySchedule.Compute(3, TimeSpan.FromSeconds(5), 0.5));
    }

    [TestMethod]
    public void Compute_WithAbsurdRetryAfter_CapsAtOneDay()
    {
        Assert.AreEqual(RetrySchedule.MaxRetryAfter, RetrySchedule.Compute(1, TimeSpan.FromDays(30), 0.5));
    }

    [TestMethod]
    public void DelayAfter_UsesTheInjectedRandomness()
    {
        var schedule = new RetrySchedule(() => 0.0);
        Assert.AreEqual(TimeSpan.FromSeconds(96), schedule.DelayAfter(2, null));
    }

    [TestMethod]
    public void DelayAfter_WithSharedRandom_AlwaysWithinJitterBand()
    {
        var schedule = new RetrySchedule();
        for (var i = 0; i < 200; i++)
        {
            var delay = schedule.DelayAfter(5, null);
            Assert.IsTrue(delay >= TimeSpan.FromMinutes(48) && delay <= TimeSpan.FromMinutes(72), delay.ToString());
        }
    }
}
