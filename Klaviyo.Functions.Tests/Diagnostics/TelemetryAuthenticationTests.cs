using Klaviyo.Functions.Diagnostics;

namespace Klaviyo.Functions.Tests.Diagnostics;

[TestClass]
public sealed class TelemetryAuthenticationTests
{
    [TestMethod]
    public void TryParse_WithClientIdAndAad_ReturnsUserAssignedClientId()
    {
        Assert.IsTrue(TelemetryAuthentication.TryParse("ClientId=1234-abcd;Authorization=AAD", out var clientId));
        Assert.AreEqual("1234-abcd", clientId);
    }

    [TestMethod]
    public void TryParse_WithAadOnly_MeansSystemAssignedIdentity()
    {
        Assert.IsTrue(TelemetryAuthentication.TryParse("Authorization=AAD", out var clientId));
        Assert.IsNull(clientId);
    }

    [TestMethod]
    [DataRow(null)]
    [DataRow("")]
    [DataRow("ClientId=1234-abcd")]
    [DataRow("ClientId=1234-abcd;Authorization=Key")]
    public void TryParse_WithoutAad_ReturnsFalse(string? value)
    {
        Assert.IsFalse(TelemetryAuthentication.TryParse(value, out var clientId));
        Assert.IsNull(clientId);
    }
}
