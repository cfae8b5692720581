using System.Net;
using System.Text;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.Klaviyo;

/// <summary>GET calls through the same client and pipeline as the POSTs (import job status and errors, spec 8.3).</summary>
[TestClass]
public sealed class KlaviyoGetTests
{
    private const string JobPath = "/api/profile-bulk-import-jobs/J1";

    public TestContext TestContext { get; set; } = null!;

    private static KlaviyoRequest JobStatus() => KlaviyoRequest.Get(KlaviyoEndpoint.GetImportJob, JobPath);

    [TestMethod]
    public void Request_GetAndPost_ToStringSaysTheMethod()
    {
        Assert.AreEqual($"GET {JobPath}", JobStatus().ToString());
        Assert.AreEqual(HttpMethod.Post, Plans.Event().Method);
        Assert.StartsWith("POST /api/events (", Plans.Event().ToString());
    }

    [TestMethod]
    public async Task SendAsync_Get_SendsNoContentAndKeepsTheWholeAnswer()
    {
        const string answer = """{"data":{"type":"profile-bulk-import-job","id":"J1","attributes":{"status":"queued"}}}""";
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(JobPath, 200, answer);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var response = await host.Client.SendAsync(JobStatus(), TestContext.CancellationToken);

        var success = Assert.IsInstanceOfType<KlaviyoResponse.Success>(response);
        Assert.IsNull(success.Unread);
        Assert.AreEqual(answer, Encoding.UTF8.GetString(success.Body.Span));
        var received = klaviyo.Received.Single();
        Assert.AreEqual("GET", received.Method);
        Assert.AreEqual("", received.Body);
        Assert.IsFalse(received.Headers.ContainsKey("Content-Type"));
        Assert.AreEqual("2026-07-15", received.Headers["revision"]);
    }

    [TestMethod]
    public async Task SendAsync_PostAnswer_KeepsNoBody()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("01P"));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var response = await host.Client.SendAsync(Plans.IdentifyWithList().Steps[0].Build(), TestContext.CancellationToken);

        var success = Assert.IsInstanceOfType<KlaviyoResponse.Success>(response);
        Assert.AreEqual("01P", success.DataId);
        Assert.IsTrue(success.Body.IsEmpty, "a POST's 2xx keeps data.id only");
    }

    [TestMethod]
    [DataRow(KlaviyoAnswerHandler.MaxGetBodyBytes, true, DisplayName = "exactly 1 MiB")]
    [DataRow(KlaviyoAnswerHandler.MaxGetBodyBytes + 1, false, DisplayName = "1 MiB and a byte")]
    public async Task SendAsync_GetAnswerAtAndOverTheBound_WholeOrUnreadNeverPartial(int size, bool kept)
    {
        var body = "{\"pad\":\"" + new string('x', size - 10) + "\"}";
        Assert.AreEqual(size, body.Length);
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(JobPath, 200, body);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var success = Assert.IsInstanceOfType<KlaviyoResponse.Success>(await host.Client.SendAsync(JobStatus(), TestContext.CancellationToken));

        Assert.HasCount(kept ? size : 0, success.Body.ToArray());
        Assert.AreEqual(kept, success.Unread is null, success.Unread);
    }

    [TestMethod]
    public async Task SendAsync_GetAnswerOverTheBoundWithoutContentLength_UnreadNeverPartial()
    {
        // Chunked: the length is known only by reading, so the read itself must stop at the bound.
        using var handler = new KlaviyoAnswerHandler { InnerHandler = new ChunkedAnswer(KlaviyoAnswerHandler.MaxGetBodyBytes + 1) };
        using var invoker = new HttpMessageInvoker(handler);

        using var response = await invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, "http://127.0.0.1/x"), TestContext.CancellationToken);

        var answer = Assert.IsInstanceOfType<KlaviyoAnswerContent>(response.Content);
        Assert.IsTrue(answer.Body.IsEmpty);
        Assert.Contains("over 1 MiB", answer.Unread ?? "");
    }

    [TestMethod]
    public async Task SendAsync_GetAnswerOfTheBoundWithoutContentLength_KeptWhole()
    {
        using var handler = new KlaviyoAnswerHandler { InnerHandler = new ChunkedAnswer(KlaviyoAnswerHandler.MaxGetBodyBytes) };
        using var invoker = new HttpMessageInvoker(handler);

        using var response = await invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, "http://127.0.0.1/x"), TestContext.CancellationToken);

        var answer = Assert.IsInstanceOfType<KlaviyoAnswerContent>(response.Content);
        Assert.IsNull(answer.Unread);
        Assert.HasCount(KlaviyoAnswerHandler.MaxGetBodyBytes, answer.Body.ToArray());
    }

    [TestMethod]
    public async Task SendAsync_GetBodyStalls_UnreadWithNoBody()
    {
        using var klaviyo = FaultyKlaviyo.Start().Then(JobPath, new Fault.StallBody(200, "{\"data\":{\"attributes\":{\"status\":\"comp", 500));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, new Dictionary<string, string?> { ["Relay:AttemptTimeout"] = "00:00:01" }, time: TimeProvider.System);

        var success = Assert.IsInstanceOfType<KlaviyoResponse.Success>(await host.Client.SendAsync(JobStatus(), TestContext.CancellationToken));

        Assert.IsTrue(success.Body.IsEmpty, "a cut-off body is never handed on as if whole");
        Assert.Contains("stalled", success.Unread ?? "");
        Assert.Contains($"GET {JobPath} answered 200, then the answer's body stalled", host.AllLogText());
    }

    [TestMethod]
    public async Task SendAsync_Get429_TransientDescribedAsAGet()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(JobPath, 429, FakeKlaviyo.ErrorAnswer(429, "throttled", "Request was throttled.", null), new Dictionary<string, string> { ["Retry-After"] = "120" });
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var transient = Assert.IsInstanceOfType<KlaviyoResponse.Transient>(await host.Client.SendAsync(JobStatus(), TestContext.CancellationToken));

        Assert.AreEqual(TimeSpan.FromSeconds(120), transient.RetryAfter);
        Assert.StartsWith($"GET {JobPath} answered 429: throttled", transient.Description);
    }

    [TestMethod]
    public async Task SendAsync_GetOverTheEndpointsShare_HeldBackWithoutACall()
    {
        // 1000 instances: one status GET a second and a minute for this one; the second is held back, not sent.
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(JobPath, 200, "{}");
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, new Dictionary<string, string?> { ["Relay:ExpectedInstanceCount"] = "1000", ["Relay:MaxInCallRetries"] = "0" });

        var first = await host.Client.SendAsync(JobStatus(), TestContext.CancellationToken);
        var second = await host.Client.SendAsync(JobStatus(), TestContext.CancellationToken);

        Assert.IsInstanceOfType<KlaviyoResponse.Success>(first);
        Assert.StartsWith($"GET {JobPath}: held back by the relay's rate limiter", Assert.IsInstanceOfType<KlaviyoResponse.HeldBack>(second).Description);
        Assert.HasCount(1, klaviyo.Received);
    }

    /// <summary>An answer of <paramref name="size"/> bytes with no Content-Length (as a chunked one arrives).</summary>
    private sealed class ChunkedAnswer(int size) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var content = new StreamContent(new UnseekableStream(new MemoryStream(new byte[size])));
            Assert.IsNull(content.Headers.ContentLength);
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = content, RequestMessage = request });
        }
    }

    private sealed class UnseekableStream(Stream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() { }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 8192));

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
