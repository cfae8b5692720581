using System.Text;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>The fake every relay test leans on: a call no stub expects must fail the test, not pass as a 404.</summary>
[TestClass]
public sealed class FakeKlaviyoTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task Dispose_AfterACallNoStubExpected_FailsNamingTheCall()
    {
        var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var http = new HttpClient();

        using var expected = await http.PostAsync(klaviyo.BaseUrl + "/api/events", new StringContent("{}", Encoding.UTF8, "application/json"), TestContext.CancellationToken);
        using var unexpected = await http.PostAsync(klaviyo.BaseUrl + "/api/profile-import", new StringContent("{}", Encoding.UTF8, "application/json"), TestContext.CancellationToken);

        var failure = Assert.ThrowsExactly<AssertFailedException>(klaviyo.Dispose);
        Assert.Contains("POST /api/profile-import", failure.Message);
        Assert.DoesNotContain("/api/events", failure.Message);
    }

    [TestMethod]
    public async Task Dispose_AfterOnlyStubbedCalls_DoesNotFail()
    {
        var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var http = new HttpClient();

        using var response = await http.PostAsync(klaviyo.BaseUrl + "/api/events", new StringContent("{}", Encoding.UTF8, "application/json"), TestContext.CancellationToken);

        Assert.AreEqual(202, (int)response.StatusCode);
        klaviyo.Dispose();
    }
}
