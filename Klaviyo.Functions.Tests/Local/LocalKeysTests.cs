using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Local;
using Microsoft.AspNetCore.Http;

namespace Klaviyo.Functions.Tests.Local;

[TestClass]
public sealed class LocalKeysTests
{
    [TestMethod]
    [DataRow("http://localhost:7071", true)]
    [DataRow("http://127.0.0.1:7071", true)]
    [DataRow("http://127.3.4.5:80", true)]
    [DataRow("http://[::1]:7071", true)]
    [DataRow("http://0.0.0.0:7071", false)]
    [DataRow("http://*:7071", false)]
    [DataRow("http://+:7071", false)]
    [DataRow("http://[::]:7071", false)]
    [DataRow("http://relay.example.com:7071", false)]
    [DataRow("http://192.168.1.10:7071", false)]
    public void IsLoopback_Url_OnlyLoopbackAddresses(string url, bool loopback) => Assert.AreEqual(loopback, LocalKeys.IsLoopback(url));

    [TestMethod]
    public void For_OneOfSeveralUrlsBeyondLoopbackWithoutKey_FailsNamingTheSettingAndTheAddress()
    {
        var failure = Assert.ThrowsExactly<LocalStartupException>(() => LocalKeys.For(new LocalOptions(), new IngestOptions(), "http://localhost:7071;http://0.0.0.0:7072"));

        Assert.StartsWith("Local__ApiKey is required", failure.Message);
        Assert.Contains("http://0.0.0.0:7072", failure.Message);
    }

    [TestMethod]
    public void For_BeyondLoopbackWithSigningSecretOnly_StartsAndNeedsNoKey()
    {
        var keys = LocalKeys.For(new LocalOptions(), new IngestOptions { SigningSecret = "signing-secret" }, "http://0.0.0.0:7071");

        Assert.IsTrue(keys.AllowsIngest(Request()));
        Assert.IsNull(keys.Admin);
        Assert.IsFalse(keys.AllowsAdmin(Request(header: "anything")));
    }

    [TestMethod]
    public void AllowsIngest_WithApiKey_TakesHeaderOrCodeAndRefusesOthers()
    {
        var keys = LocalKeys.For(new LocalOptions { ApiKey = "api-key-0123456789" }, new IngestOptions(), "http://localhost:7071");

        Assert.IsTrue(keys.AllowsIngest(Request(header: "api-key-0123456789")));
        Assert.IsTrue(keys.AllowsIngest(Request(code: "api-key-0123456789")));
        Assert.IsFalse(keys.AllowsIngest(Request()));
        Assert.IsFalse(keys.AllowsIngest(Request(header: "api-key-012345678")));
        Assert.IsFalse(keys.AllowsIngest(Request(header: "api-key-0123456789 ")));
        Assert.IsFalse(keys.AllowsAdmin(Request(header: "api-key-0123456789")), "the ingest key is not the admin key");
    }

    [TestMethod]
    public void AllowsStatus_OnLoopbackWithoutKeys_OpenLikeTheIngest()
    {
        var keys = LocalKeys.For(new LocalOptions(), new IngestOptions(), "http://localhost:7071");

        Assert.IsTrue(keys.AllowsStatus(Request()));
    }

    [TestMethod]
    public void AllowsStatus_WithApiKey_TakesTheApiKeyOrTheAdminKeyAndRefusesOthers()
    {
        var keys = LocalKeys.For(new LocalOptions { ApiKey = "api-key-0123456789", AdminKey = "admin-key-0123456789" }, new IngestOptions(), "http://0.0.0.0:7071");

        Assert.IsTrue(keys.AllowsStatus(Request(code: "api-key-0123456789")));
        Assert.IsTrue(keys.AllowsStatus(Request(header: "admin-key-0123456789")));
        Assert.IsFalse(keys.AllowsStatus(Request()));
        Assert.IsFalse(keys.AllowsStatus(Request(header: "api-key-012345678")));
    }

    [TestMethod]
    public void AllowsStatus_BeyondLoopbackWithSigningSecretOnly_RefusedThoughTheIngestIsOpenToSignedRequests()
    {
        var keys = LocalKeys.For(new LocalOptions(), new IngestOptions { SigningSecret = "signing-secret" }, "http://0.0.0.0:7071");

        Assert.IsTrue(keys.AllowsIngest(Request()), "the signature guards the ingest");
        Assert.IsFalse(keys.AllowsStatus(Request()), "a GET carries no signature: the dead letters on the status page stay closed");
        Assert.IsFalse(keys.AllowsStatus(Request(header: "signing-secret")));
    }

    private static HttpRequest Request(string? header = null, string? code = null)
    {
        var context = new DefaultHttpContext();
        if (header is not null)
        {
            context.Request.Headers[LocalKeys.HeaderName] = header;
        }
        if (code is not null)
        {
            context.Request.QueryString = QueryString.Create(LocalKeys.QueryName, code);
        }
        return context.Request;
    }
}
