using System.Net.Sockets;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Polly.Timeout;

namespace Klaviyo.Functions.Tests.Relay;

[TestClass]
public sealed class FailureClassifierTests
{
    [TestMethod]
    [DataRow(200, FailureKind.None)]
    [DataRow(202, FailureKind.None)]
    [DataRow(204, FailureKind.None)]
    [DataRow(408, FailureKind.Transient)]
    [DataRow(429, FailureKind.Transient)]
    [DataRow(500, FailureKind.Transient)]
    [DataRow(502, FailureKind.Transient)]
    [DataRow(503, FailureKind.Transient)]
    [DataRow(504, FailureKind.Transient)]
    [DataRow(524, FailureKind.Transient)]
    [DataRow(401, FailureKind.Unauthorized)]
    [DataRow(403, FailureKind.Unauthorized)]
    [DataRow(400, FailureKind.Rejected)]
    [DataRow(404, FailureKind.Rejected)]
    [DataRow(405, FailureKind.Rejected)]
    [DataRow(409, FailureKind.Rejected)]
    [DataRow(410, FailureKind.Rejected)]
    [DataRow(413, FailureKind.Rejected)]
    [DataRow(415, FailureKind.Rejected)]
    [DataRow(422, FailureKind.Rejected)]
    [DataRow(301, FailureKind.Rejected)]
    [DataRow(302, FailureKind.Rejected)]
    public void Classify_StatusCode_MatchesSpecTable(int status, object expectedCase)
    {
        var expected = (FailureKind)expectedCase;
        Assert.AreEqual(expected, FailureClassifier.Classify(status));
    }

    [TestMethod]
    public void IsTransient_ConnectionFailureAndTimeout_True()
    {
        Assert.IsTrue(FailureClassifier.IsTransient(new HttpRequestException(HttpRequestError.ConnectionError, "refused", new SocketException())));
        Assert.IsTrue(FailureClassifier.IsTransient(new TimeoutRejectedException()));
        Assert.IsTrue(FailureClassifier.IsTransient(new IOException("reset")));
    }

    [TestMethod]
    public void IsTransient_BugsAndCancellation_False()
    {
        Assert.IsFalse(FailureClassifier.IsTransient(new InvalidOperationException()));
        Assert.IsFalse(FailureClassifier.IsTransient(new OperationCanceledException()));
    }
}
