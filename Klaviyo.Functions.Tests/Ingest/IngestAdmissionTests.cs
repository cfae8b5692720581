using Klaviyo.Functions.Ingest;
using Microsoft.Extensions.Time.Testing;

namespace Klaviyo.Functions.Tests.Ingest;

/// <summary>Issue 18 item 4, the eviction policy on a simulated clock: who may be evicted to make room, and who not.
/// The built app under attack is <c>SlowUploadTests</c>; the measured figure is <c>bench/slow-uploads.py</c>.</summary>
[TestClass]
public sealed class IngestAdmissionTests
{
    private const long Budget = 1024 * 1024;
    private readonly FakeTimeProvider _time = new();

    public TestContext TestContext { get; set; } = null!;

    private IngestAdmission Admission(int minRate = 16 * 1024) =>
        new(Microsoft.Extensions.Options.Options.Create(new IngestOptions { MaxRequestBytes = 1024 * 1024, MaxInFlightBodyBytes = Budget, MinBodyBytesPerSecond = minRate }), _time);

    /// <summary>Moves the simulated clock in 5 ms steps (letting the waiter's loop run between them) until
    /// <paramref name="task"/> ends or <paramref name="span"/> has passed; <paramref name="each"/> runs at every step.</summary>
    private async Task AdvanceAsync(Task task, TimeSpan span, Action? each = null)
    {
        for (var passed = TimeSpan.Zero; passed < span && !task.IsCompleted; passed += TimeSpan.FromMilliseconds(5))
        {
            each?.Invoke();
            _time.Advance(TimeSpan.FromMilliseconds(5));
            await Task.Delay(1, TestContext.CancellationToken);
        }
    }

    /// <summary>An upload holding the whole budget, as RequestBody holds it.</summary>
    private static BodyUpload Holding(IngestAdmission admission)
    {
        var upload = admission.BeginUpload();
        Assert.IsTrue(admission.TryReserve(Budget));
        upload.Reserved = Budget;
        return upload;
    }

    [TestMethod]
    public async Task SlowUpload_IsEvictedForARequestThatNeedsRoom_WhichGetsItOnceGivenBack()
    {
        var admission = Admission();
        using var slow = Holding(admission);
        slow.Received(1);
        _time.Advance(TimeSpan.FromSeconds(2.5)); // a byte in 2.5 s: slower than 16 KB/s

        var waiting = admission.ReserveAsync(16 * 1024, self: null, TestContext.CancellationToken).AsTask();

        Assert.IsTrue(slow.IsEvicted);
        Assert.IsFalse(waiting.IsCompleted, "the room comes back when the evicted reader lets go");
        admission.Release(Budget); // what RequestBody does when its read is cancelled
        await AdvanceAsync(waiting, TimeSpan.FromSeconds(1));
        Assert.IsTrue(await waiting);
        Assert.AreEqual(16 * 1024, admission.ReservedBytes);
    }

    [TestMethod]
    public async Task FastUpload_IsNotEvicted_AndTheOtherRequestGets503AfterItsWait()
    {
        var admission = Admission();
        using var fast = Holding(admission);

        var waiting = admission.ReserveAsync(16 * 1024, self: null, TestContext.CancellationToken).AsTask();
        await AdvanceAsync(waiting, TimeSpan.FromSeconds(5), () => fast.Received(1024)); // 200 KB a second: well above the minimum

        Assert.IsTrue(waiting.IsCompleted);
        Assert.IsFalse(await waiting, "no room within the wait: 503");
        Assert.IsFalse(fast.IsEvicted);
    }

    [TestMethod]
    public async Task UploadWaitingForTheBudget_IsNotSlow_WhileItWaits()
    {
        var admission = Admission();
        using var holder = admission.BeginUpload();
        Assert.IsTrue(admission.TryReserve(Budget - 16 * 1024));
        holder.Reserved = Budget - 16 * 1024;
        holder.Received(64 * 1024);
        using var waiter = admission.BeginUpload();
        Assert.IsTrue(admission.TryReserve(16 * 1024));
        waiter.Reserved = 16 * 1024;

        // The waiter needs more room and waits for it for 2.5 s: long enough to look slow, were the wait counted.
        var grow = admission.ReserveAsync(16 * 1024, waiter, TestContext.CancellationToken).AsTask();
        await AdvanceAsync(grow, TimeSpan.FromSeconds(2.5), () => holder.Received(1024)); // the holder keeps sending: not slow either
        // A third request looks for slow uploads to evict while the waiter still waits.
        var third = admission.ReserveAsync(1024, self: null, TestContext.CancellationToken).AsTask();
        await AdvanceAsync(third, TimeSpan.FromMilliseconds(200), () => holder.Received(1024));

        Assert.IsFalse(grow.IsCompleted, "still waiting");
        Assert.IsFalse(waiter.IsEvicted, "waiting for the ingest's own budget is not the sender's slowness");
        Assert.IsFalse(holder.IsEvicted);
        await AdvanceAsync(grow, TimeSpan.FromSeconds(1), () => holder.Received(1024));
        Assert.IsFalse(await grow, "no room within the wait: 503");
        await AdvanceAsync(third, TimeSpan.FromSeconds(5), () => holder.Received(1024));
        Assert.IsFalse(await third);
    }

    [TestMethod]
    public async Task MinRateZero_TurnsEvictionOff()
    {
        var admission = Admission(minRate: 0);
        using var stalled = Holding(admission);
        _time.Advance(TimeSpan.FromMinutes(1));

        var waiting = admission.ReserveAsync(16 * 1024, self: null, TestContext.CancellationToken).AsTask();
        await AdvanceAsync(waiting, TimeSpan.FromSeconds(5));

        Assert.IsTrue(waiting.IsCompleted);
        Assert.IsFalse(await waiting);
        Assert.IsFalse(stalled.IsEvicted);
    }
}
