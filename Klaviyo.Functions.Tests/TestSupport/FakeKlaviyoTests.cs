namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>The fake Klaviyo itself: a call no test set up is a failure, not a quiet 404.</summary>
[TestClass]
public sealed class FakeKlaviyoTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task Dispose_AfterACallNoTestSetUp_FailsNamingTheCall()
    {
        var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var http = new HttpClient();

        using var expected = await http.PostAsync(klaviyo.BaseUrl + "/api/events", new StringContent("{}"), TestContext.CancellationToken);
        using var unexpected = await http.PostAsync(klaviyo.BaseUrl + "/api/profile-import", new StringContent("{}"), TestContext.CancellationToken);

        var failure = Assert.ThrowsExactly<AssertFailedException>(klaviyo.Dispose);
        Assert.Contains("POST /api/profile-import", failure.Message);
        Assert.DoesNotContain("/api/events", failure.Message);
    }

    [TestMethod]
    public async Task Dispose_AfterOnlyCallsSetUp_DoesNotFail()
    {
        var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var http = new HttpClient();

        using var response = await http.PostAsync(klaviyo.BaseUrl + "/api/events", new StringContent("{}"), TestContext.CancellationToken);

        Assert.AreEqual(202, (int)response.StatusCode);
        Assert.IsEmpty(klaviyo.UnexpectedCalls);
        klaviyo.Dispose();
    }
}
