using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.LoadRunner;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using LoadFake = Klaviyo.Functions.LoadRunner.FakeKlaviyo;

namespace Klaviyo.Functions.Tests.Klaviyo;

/// <summary>
/// Pacing across instances (spec 8.4, issue 22): each instance starts from its 1/<c>Relay__ExpectedInstanceCount</c>
/// share and then follows Klaviyo's <c>RateLimit-*</c> answers, so one instance alone uses the whole account while
/// several on one account stay under it. The account is the load runner's fake over real HTTP: one shared budget per
/// endpoint in fixed clock windows, 429 with Retry-After past it, <c>RateLimit-Limit/Remaining/Reset</c> otherwise.
/// </summary>
/// <remarks>Alone, not beside the parallel tests: its instances pace in real time against real clock windows, and a
/// starved core delays answers enough to skew what they measure (it failed once in a shared run, never alone).</remarks>
[TestClass]
[DoNotParallelize]
public sealed class AccountPacingTests
{
    private static readonly TimeSpan RunFor = TimeSpan.FromSeconds(20);

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task Part_AloneOnTheAccount_GrowsFromTheStartShareToTheWholeBudgetAndBurst()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var limits = new KlaviyoRateLimits(Options.Create(new RelayOptions { ExpectedInstanceCount = 40 }), time);
        var before = limits.PartOf(KlaviyoEndpoint.AddProfilesToList);

        // Every answer: one call fewer left, the last one this instance's own.
        for (var remaining = 149; remaining > 140; remaining--)
        {
            limits.Observe(KlaviyoEndpoint.AddProfilesToList, 150, remaining, TimeSpan.FromSeconds(50));
            time.Advance(TimeSpan.FromMilliseconds(400));
        }
        var acquiring = Enumerable.Range(0, 12).Select(_ => limits.AcquireAsync(KlaviyoEndpoint.AddProfilesToList, TestContext.CancellationToken).AsTask()).ToList();
        var burst = acquiring.Count(a => a.IsCompletedSuccessfully && a.Result.IsAcquired);
        time.Advance(KlaviyoRateLimits.BurstWindow);
        foreach (var lease in await Task.WhenAll(acquiring))
        {
            lease.Dispose();
        }

        Assert.AreEqual(1.0 / 40 + 0.05, before, 1e-9, "the start share, and a little room to grow");
        Assert.AreEqual(1.0, limits.PartOf(KlaviyoEndpoint.AddProfilesToList), "nobody else spends the account");
        Assert.AreEqual(10, burst, "the account's whole burst of 10/s, not the 1/s share of 40 instances");
    }

    [TestMethod]
    public void Part_WithThreeOthersAsBusy_IsAboutAQuarterOfTheBudgetAndBurst()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var limits = new KlaviyoRateLimits(Options.Create(new RelayOptions { ExpectedInstanceCount = 1 }), time);

        // Between two of this instance's answers the account's count falls by four: its call and three others'.
        for (var remaining = 148; remaining > 60; remaining -= 4)
        {
            limits.Observe(KlaviyoEndpoint.AddProfilesToList, 150, remaining, TimeSpan.FromSeconds(50));
            time.Advance(TimeSpan.FromMilliseconds(400));
        }
        var first = limits.ReserveAccountSlot(KlaviyoEndpoint.AddProfilesToList, TimeSpan.FromSeconds(10));
        var second = limits.ReserveAccountSlot(KlaviyoEndpoint.AddProfilesToList, TimeSpan.FromSeconds(10));

        Assert.AreEqual(0.30, limits.PartOf(KlaviyoEndpoint.AddProfilesToList), 0.03);
        // 64 left for ~50 s, this instance's part about 0.3: a slot every ~2.6 s rather than every 0.8 s.
        Assert.IsTrue(first.Reserved && second.Reserved);
        Assert.IsGreaterThan(TimeSpan.FromSeconds(1.5), second.Wait - first.Wait);
        Assert.IsLessThan(TimeSpan.FromSeconds(3), second.Wait - first.Wait);
    }

    [TestMethod]
    public async Task Pacing_OneOfFortyExpectedInstancesAlone_UsesTheAccountBudgetNotItsShare()
    {
        await using var account = await LoadFake.StartAsync(new FakeKlaviyoOptions { EnforceLimits = true });

        var (sent, throttled) = await RunAsync(account, instances: 1, expected: 40);

        // The 1/40 share is 1 list call a second and 3 a minute; Klaviyo's 150 a minute spread over the window is at
        // least 2.5 a second for an instance alone.
        Assert.IsGreaterThanOrEqualTo(30, sent, $"{sent} list calls accepted in {RunFor.TotalSeconds} s");
        Assert.AreEqual(0, throttled);
    }

    [TestMethod]
    public async Task Pacing_FourInstancesEachBelievingItIsAlone_ShareTheAccountWithoutItsRefusals()
    {
        await using var account = await LoadFake.StartAsync(new FakeKlaviyoOptions { EnforceLimits = true });

        var (sent, throttled) = await RunAsync(account, instances: 4, expected: 1, warmUp: TimeSpan.FromSeconds(5));

        // Counted after a 5 s start: until Klaviyo's first answers each believes it is alone and may spend the burst.
        Assert.IsLessThanOrEqualTo(sent / 100, throttled, $"{throttled} of {sent + throttled} calls answered 429");
        Assert.IsGreaterThanOrEqualTo(30, sent, "together they still use the account's budget");
    }

    /// <summary><paramref name="instances"/> relays, each with its own limiter and <c>Relay__ExpectedInstanceCount</c>
    /// <paramref name="expected"/>, send list calls back to back for <see cref="RunFor"/>, each held-back call again at
    /// the moment its limiter named; the account's accepted and 429 counts for the list endpoint.</summary>
    /// <param name="warmUp">Calls before this much time has passed are not counted.</param>
    private async Task<(long Accepted, long Throttled)> RunAsync(LoadFake account, int instances, int expected, TimeSpan? warmUp = null)
    {
        (long Accepted, long Throttled) before = (0, 0);
        var hosts = Enumerable.Range(0, instances).Select(_ => RelayTestHost.Create(account.BaseUrl,
            new Dictionary<string, string?> { ["Relay:ExpectedInstanceCount"] = expected.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            time: TimeProvider.System)).ToList();
        try
        {
            var start = DateTimeOffset.UtcNow;
            var until = start + RunFor;
            var counting = warmUp is { } w ? Task.Delay(w, TestContext.CancellationToken).ContinueWith(_ =>
            {
                var c = account.Counters["list-members"];
                before = (c.AcceptedCount, c.ThrottledCount);
            }, TaskScheduler.Default) : Task.CompletedTask;
            var listAdd = Plans.IdentifyWithList("L1").Steps[1].Build("P1");
            await Task.WhenAll(hosts.Select(host => Task.Run(async () =>
            {
                while (DateTimeOffset.UtcNow < until)
                {
                    var answer = await host.Client.SendAsync(listAdd, TestContext.CancellationToken);
                    var wait = answer switch
                    {
                        KlaviyoResponse.HeldBack held => held.RetryAfter,
                        KlaviyoResponse.Transient { RetryAfter: { } after } => after,
                        _ => TimeSpan.Zero,
                    };
                    var left = until - DateTimeOffset.UtcNow;
                    if (wait > TimeSpan.Zero && left > TimeSpan.Zero)
                    {
                        await Task.Delay(wait < left ? wait : left, TestContext.CancellationToken);
                    }
                }
            }, TestContext.CancellationToken)));
            await counting;
        }
        finally
        {
            foreach (var host in hosts)
            {
                host.Dispose();
            }
        }
        var counter = account.Counters["list-members"];
        var (accepted, throttled) = (counter.AcceptedCount - before.Accepted, counter.ThrottledCount - before.Throttled);
        TestContext.WriteLine($"{instances} instance(s), expected {expected}: {accepted} list calls accepted, {throttled} answered 429 in {(RunFor - (warmUp ?? TimeSpan.Zero)).TotalSeconds} s" +
            (warmUp is null ? "" : $" after {warmUp.Value.TotalSeconds} s not counted ({before.Accepted} accepted, {before.Throttled} answered 429)"));
        return (accepted, throttled);
    }
}
