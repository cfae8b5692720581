using System.Text;
using System.Text.Json;
using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.Ingest;

[TestClass]
public sealed class IngestFunctionTests
{
    public TestContext TestContext { get; set; } = null!;

    private static string[] AcceptedIds(IngestResponse response) =>
        [.. response.Body.GetProperty("messageIds").EnumerateArray().Select(e => e.GetString()!)];

    private static void AssertProblem(IngestResponse response, int status)
    {
        Assert.AreEqual(status, response.Status);
        Assert.AreEqual("application/problem+json", response.ContentType);
        Assert.AreEqual(status, response.Body.GetProperty("status").GetInt32());
        Assert.StartsWith("urn:klaviyo-relay:problem:", response.Body.GetProperty("type").GetString()!);
        Assert.IsFalse(string.IsNullOrWhiteSpace(response.Body.GetProperty("title").GetString()));
        Assert.IsFalse(string.IsNullOrWhiteSpace(response.Body.GetProperty("detail").GetString()));
        Assert.IsFalse(response.Body.TryGetProperty("accepted", out _));
    }

    [TestMethod]
    public async Task Events_SingleObject_Answers202AndEnqueuesOneMessage()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", SampleEvents.Track);

        Assert.AreEqual(202, response.Status);
        Assert.AreEqual("application/json", response.ContentType);
        Assert.AreEqual(1, response.Body.GetProperty("accepted").GetInt32());
        CollectionAssertEqual(["m-track"], AcceptedIds(response));
        var queued = host.Queue.Sent.Single();
        Assert.AreEqual("m-track", queued.MessageId);
        Assert.AreEqual("track", queued.Subject);
        Assert.AreEqual(1, queued.Attempt);
        var body = IngestHost.BodyOf(queued);
        Assert.AreEqual("m-track", body.GetProperty("messageId").GetString());
        Assert.AreEqual("2026-11-28T12:30:15.123Z", body.GetProperty("receivedAt").GetString());
        Assert.AreEqual("Order Completed", body.GetProperty("event").GetString());
        Assert.AreEqual(12.5, body.GetProperty("properties").GetProperty("revenue").GetDouble());
    }

    [TestMethod]
    public async Task Events_Array_Answers202WithIdsInRequestOrder()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", $"[{SampleEvents.Identify},{SampleEvents.Track},{SampleEvents.Page}]");

        Assert.AreEqual(202, response.Status);
        Assert.AreEqual(3, response.Body.GetProperty("accepted").GetInt32());
        CollectionAssertEqual(["m-identify", "m-track", "m-page"], AcceptedIds(response));
        CollectionAssertEqual(["m-identify", "m-track", "m-page"], [.. host.Queue.Sent.Select(e => e.MessageId)]);
        CollectionAssertEqual(["identify", "track", "page"], [.. host.Queue.Sent.Select(e => e.Subject)]);
    }

    [TestMethod]
    [DataRow("/api/events")]
    [DataRow("/api/v1/batch")]
    public async Task Route_BatchEnvelope_Answers202AndEnqueuesEveryEvent(string path)
    {
        var host = new IngestHost();

        var response = await host.PostAsync(path, $$"""{"sentAt":"2026-11-28T12:00:00Z","batch":[{{SampleEvents.Identify}},{{SampleEvents.Group}},{{SampleEvents.Alias}}]}""");

        Assert.AreEqual(202, response.Status);
        CollectionAssertEqual(["m-identify", "m-group", "m-alias"], AcceptedIds(response));
        Assert.HasCount(3, host.Queue.Sent);
    }

    [TestMethod]
    public async Task BatchRoute_PlainArray_Answers202()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/v1/batch", SampleEvents.TrackArray(3));

        Assert.AreEqual(202, response.Status);
        CollectionAssertEqual(["m-0", "m-1", "m-2"], AcceptedIds(response));
    }

    [TestMethod]
    [DataRow("identify", """{"userId":"u-1","traits":{"email":"ada@example.com"}}""")]
    [DataRow("track", """{"userId":"u-1","event":"Clicked"}""")]
    [DataRow("page", """{"userId":"u-1","name":"Home"}""")]
    [DataRow("screen", """{"userId":"u-1","name":"Home"}""")]
    [DataRow("group", """{"userId":"u-1","groupId":"AbC123"}""")]
    [DataRow("alias", """{"userId":"u-1","previousId":"u-0"}""")]
    public async Task TypedRoute_BodyWithoutType_TakesTypeFromRoute(string type, string body)
    {
        var host = new IngestHost();

        var response = await host.PostAsync($"/api/v1/{type}", body);

        Assert.AreEqual(202, response.Status);
        var queued = host.Queue.Sent.Single();
        Assert.AreEqual(type, queued.Subject);
        Assert.AreEqual(type, IngestHost.BodyOf(queued).GetProperty("type").GetString());
    }

    [TestMethod]
    public async Task TypedRoute_BodyWithSameTypeInOtherCase_IsAccepted()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/v1/track", """{"type":"Track","userId":"u-1","event":"Clicked"}""");

        Assert.AreEqual(202, response.Status);
        Assert.AreEqual("track", host.Queue.Sent.Single().Subject);
    }

    [TestMethod]
    public async Task TypedRoute_BodyTypeDisagrees_Answers400NamingType()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/v1/identify", SampleEvents.Track);

        AssertProblem(response, 400);
        var error = response.Errors.Single();
        Assert.AreEqual(0, error.GetProperty("index").GetInt32());
        Assert.AreEqual("type", error.GetProperty("field").GetString());
        Assert.Contains("/api/v1/identify", error.GetProperty("message").GetString()!);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task Events_WithoutMessageId_GeneratesUuidUsedAsServiceBusMessageId()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", $"[{SampleEvents.TrackWithId(null)},{SampleEvents.TrackWithId(null)}]");

        Assert.AreEqual(202, response.Status);
        var ids = AcceptedIds(response);
        Assert.HasCount(2, ids);
        Assert.AreNotEqual(ids[0], ids[1]);
        foreach (var (id, queued) in ids.Zip(host.Queue.Sent))
        {
            Assert.IsTrue(Guid.TryParseExact(id, "D", out _), $"'{id}' is not a UUID");
            Assert.AreEqual(id, queued.MessageId);
            Assert.AreEqual(id, IngestHost.BodyOf(queued).GetProperty("messageId").GetString());
        }
    }

    [TestMethod]
    public async Task Events_NumericMessageId_IsKeptAsString()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", """{"type":"track","messageId":12345,"userId":"u-1","event":"Clicked"}""");

        Assert.AreEqual(202, response.Status);
        CollectionAssertEqual(["12345"], AcceptedIds(response));
        Assert.AreEqual("12345", host.Queue.Sent.Single().MessageId);
        Assert.AreEqual(JsonValueKind.String, IngestHost.BodyOf(host.Queue.Sent.Single()).GetProperty("messageId").ValueKind);
    }

    [TestMethod]
    public async Task Events_ClientReceivedAt_IsReplacedByIngestStamp()
    {
        var host = new IngestHost();

        await host.PostAsync("/api/events", """{"type":"track","receivedAt":"1999-01-01T00:00:00Z","userId":"u-1","event":"Clicked"}""");

        var body = IngestHost.BodyOf(host.Queue.Sent.Single());
        Assert.AreEqual("2026-11-28T12:30:15.123Z", body.GetProperty("receivedAt").GetString());
        Assert.ContainsSingle(p => p.Name == "receivedAt", body.EnumerateObject());
    }

    [TestMethod]
    [DataRow("true", DisplayName = "boolean")]
    [DataRow("\"\"", DisplayName = "empty string")]
    [DataRow("{\"id\":1}", DisplayName = "object")]
    [DataRow("\"129chars\"", DisplayName = "129 characters")]
    public async Task Events_InvalidMessageId_Answers400AndEnqueuesNothing(string messageIdJson)
    {
        var host = new IngestHost();
        messageIdJson = messageIdJson == "\"129chars\"" ? $"\"{new string('x', 129)}\"" : messageIdJson;

        var response = await host.PostAsync("/api/events", $$"""{"type":"track","messageId":{{messageIdJson}},"userId":"u-1","event":"Clicked"}""");

        AssertProblem(response, 400);
        var error = response.Errors.Single();
        Assert.AreEqual("messageId", error.GetProperty("field").GetString());
        Assert.AreEqual(0, error.GetProperty("index").GetInt32());
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task Events_MessageIdOf128Characters_IsAccepted()
    {
        var host = new IngestHost();
        var id = new string('a', 128);

        var response = await host.PostAsync("/api/events", SampleEvents.TrackWithId(id));

        Assert.AreEqual(202, response.Status);
        Assert.AreEqual(id, host.Queue.Sent.Single().MessageId);
    }

    [TestMethod]
    public async Task Events_DuplicateMessageIdInRequest_Answers400NamingTheSecond()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", $"[{SampleEvents.TrackWithId("a")},{SampleEvents.TrackWithId("b")},{SampleEvents.TrackWithId("a")}]");

        AssertProblem(response, 400);
        var error = response.Errors.Single();
        Assert.AreEqual(2, error.GetProperty("index").GetInt32());
        Assert.AreEqual("a", error.GetProperty("messageId").GetString());
        Assert.AreEqual("messageId", error.GetProperty("field").GetString());
        Assert.Contains("event 0", error.GetProperty("message").GetString()!);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    [DataRow(null)]
    [DataRow("application/json")]
    [DataRow("application/json; charset=utf-8")]
    [DataRow("APPLICATION/JSON;charset=UTF-8")]
    [DataRow("application/vnd.rudderstack+json")]
    [DataRow("application/cloudevents+json; charset=utf-8")]
    [DataRow("text/plain")]
    [DataRow("text/plain;charset=ISO-8859-1")]
    public async Task Events_JsonContentType_IsAccepted(string? contentType)
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", SampleEvents.Track, contentType);

        Assert.AreEqual(202, response.Status);
        Assert.HasCount(1, host.Queue.Sent);
    }

    [TestMethod]
    [DataRow("text/html")]
    [DataRow("application/xml")]
    [DataRow("application/x-www-form-urlencoded")]
    [DataRow("multipart/form-data; boundary=x")]
    [DataRow("application/jsonp")]
    [DataRow("not a media type")]
    public async Task Events_OtherContentType_Answers415(string contentType)
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", SampleEvents.Track, contentType);

        AssertProblem(response, 415);
        Assert.Contains(contentType, response.Body.GetProperty("detail").GetString()!);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task Events_MalformedJson_Answers400WithRequestLevelError()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", """{"type":"track","userId":"u-1",""");

        AssertProblem(response, 400);
        var error = response.Errors.Single();
        Assert.AreEqual(JsonValueKind.Null, error.GetProperty("index").ValueKind);
        Assert.StartsWith("malformed JSON", error.GetProperty("message").GetString()!);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    [DataRow("", "empty", DisplayName = "empty body")]
    [DataRow("[]", "no events", DisplayName = "empty array")]
    [DataRow("""{"batch":[]}""", "no events", DisplayName = "empty batch")]
    [DataRow("""{"batch":{}}""", "array", DisplayName = "batch not an array")]
    [DataRow("42", "number", DisplayName = "a number")]
    public async Task Events_BodyWithoutEvents_Answers400(string body, string expectedInMessage)
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", body);

        AssertProblem(response, 400);
        Assert.Contains(expectedInMessage, response.Errors.Single().GetProperty("message").GetString()!);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task Events_SeveralBadEvents_Answers400ListingEveryProblemWithItsIndex()
    {
        var host = new IngestHost();
        var body = $$"""[{{SampleEvents.Track}}, {"userId":"u-1","event":"Clicked"}, 42, {"type":"purchase","userId":"u-1"}, {"type":"track","messageId":false,"userId":"u-1","event":"Clicked"}, {{SampleEvents.Identify}}]""";

        var response = await host.PostAsync("/api/events", body);

        AssertProblem(response, 400);
        var errors = response.Errors;
        CollectionAssertEqual(["1", "2", "3", "4"], [.. errors.Select(e => e.GetProperty("index").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture))]);
        Assert.AreEqual("type", errors[0].GetProperty("field").GetString());
        Assert.Contains("required", errors[0].GetProperty("message").GetString()!);
        Assert.Contains("JSON object", errors[1].GetProperty("message").GetString()!);
        Assert.Contains("'purchase' is not one of", errors[2].GetProperty("message").GetString()!);
        Assert.AreEqual("messageId", errors[3].GetProperty("field").GetString());
        Assert.IsEmpty(host.Queue.Sent);
        Assert.AreEqual(0, host.Queue.SendCalls);
    }

    [TestMethod]
    public async Task Events_RequestOverLimitWithContentLength_Answers413WithoutReading()
    {
        var host = new IngestHost(new IngestOptions { MaxRequestBytes = 4096 });
        var body = new NeverReadStream();

        var response = await host.PostAsync("/api/events", body, contentLength: 4097);

        AssertProblem(response, 413);
        Assert.Contains("Ingest__MaxRequestBytes", response.Body.GetProperty("detail").GetString()!);
        Assert.IsFalse(body.WasRead);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    [DataRow(true, DisplayName = "with Content-Length")]
    [DataRow(false, DisplayName = "chunked, no Content-Length")]
    public async Task Events_BodyOneByteOverDefaultLimit_Answers413(bool sendContentLength)
    {
        var host = new IngestHost();
        var body = PaddedArray(host.Options.MaxRequestBytes + 1);

        var response = await host.PostAsync("/api/events", body, sendContentLength: sendContentLength);

        AssertProblem(response, 413);
        Assert.AreEqual("urn:klaviyo-relay:problem:request-too-large", response.Body.GetProperty("type").GetString());
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task Events_BodyExactlyAtDefaultLimit_IsAccepted()
    {
        var host = new IngestHost();
        var body = PaddedArray(host.Options.MaxRequestBytes);

        var response = await host.PostAsync("/api/events", body, sendContentLength: false);

        Assert.AreEqual(202, response.Status);
    }

    [TestMethod]
    public async Task Events_ContentLengthUnderstatesBody_StillAnswers413()
    {
        var host = new IngestHost(new IngestOptions { MaxRequestBytes = 4096 });
        var body = PaddedArray(10_000);

        var response = await host.PostAsync("/api/events", new MemoryStream(body), contentLength: 100);

        AssertProblem(response, 413);
    }

    [TestMethod]
    public async Task Events_OneEventOver32KB_Answers413NamingItsIndex()
    {
        var host = new IngestHost();
        var big = $$$"""{"type":"track","messageId":"big","userId":"u-1","event":"Clicked","properties":{"note":"{{{new string('x', 33 * 1024)}}}"}}""";

        var response = await host.PostAsync("/api/events", $"[{SampleEvents.Track},{big}]");

        AssertProblem(response, 413);
        Assert.AreEqual("urn:klaviyo-relay:problem:event-too-large", response.Body.GetProperty("type").GetString());
        var error = response.Errors.Single();
        Assert.AreEqual(1, error.GetProperty("index").GetInt32());
        Assert.AreEqual("big", error.GetProperty("messageId").GetString());
        Assert.Contains("32768", error.GetProperty("message").GetString()!);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task Events_EventJustUnder32KB_IsAccepted()
    {
        var host = new IngestHost();
        var template = """{"type":"track","messageId":"edge","userId":"u-1","event":"Clicked","properties":{"note":""}}""";
        var padding = host.Options.MaxEventBytes - Encoding.UTF8.GetByteCount(template);
        var edge = template.Replace("\"note\":\"\"", $"\"note\":\"{new string('x', padding)}\"", StringComparison.Ordinal);
        Assert.AreEqual(host.Options.MaxEventBytes, Encoding.UTF8.GetByteCount(edge));

        var response = await host.PostAsync("/api/events", edge);

        Assert.AreEqual(202, response.Status);
    }

    [TestMethod]
    public async Task Events_ThousandEventBatch_EnqueuesAllInOrder()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/v1/batch", $$"""{"batch":{{SampleEvents.TrackArray(1000)}}}""");

        Assert.AreEqual(202, response.Status);
        Assert.AreEqual(1000, response.Body.GetProperty("accepted").GetInt32());
        var expected = Enumerable.Range(0, 1000).Select(i => $"m-{i}").ToArray();
        CollectionAssertEqual(expected, AcceptedIds(response));
        CollectionAssertEqual(expected, [.. host.Queue.Sent.Select(e => e.MessageId)]);
        Assert.AreEqual(1, host.Queue.SendCalls);
    }

    [TestMethod]
    public async Task Events_WithSigningSecretAndCorrectSignature_Answers202()
    {
        var host = new IngestHost(new IngestOptions { SigningSecret = "s3cret" });
        var body = Encoding.UTF8.GetBytes(SampleEvents.Track);

        var response = await host.PostAsync("/api/events", body, signature: Signatures.Sign(body, "s3cret"));

        Assert.AreEqual(202, response.Status);
        Assert.HasCount(1, host.Queue.Sent);
    }

    [TestMethod]
    public async Task Events_WithSigningSecretAndUpperCaseHexSignature_Answers202()
    {
        var host = new IngestHost(new IngestOptions { SigningSecret = "s3cret" });
        var body = Encoding.UTF8.GetBytes(SampleEvents.Track);
        var signature = "sha256=" + Signatures.Sign(body, "s3cret")["sha256=".Length..].ToUpperInvariant();

        var response = await host.PostAsync("/api/events", body, signature: signature);

        Assert.AreEqual(202, response.Status);
    }

    [TestMethod]
    public async Task Events_WithSigningSecretAndNoSignature_Answers401()
    {
        var host = new IngestHost(new IngestOptions { SigningSecret = "s3cret" });

        var response = await host.PostAsync("/api/events", SampleEvents.Track);

        AssertProblem(response, 401);
        Assert.Contains("X-Signature header is required", response.Body.GetProperty("detail").GetString()!);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    [DataRow("other-secret", DisplayName = "signed with another secret")]
    [DataRow("tampered", DisplayName = "body changed after signing")]
    [DataRow("garbage", DisplayName = "not a signature")]
    public async Task Events_WithSigningSecretAndWrongSignature_Answers401(string kind)
    {
        var host = new IngestHost(new IngestOptions { SigningSecret = "s3cret" });
        var body = Encoding.UTF8.GetBytes(SampleEvents.Track);
        var signature = kind switch
        {
            "other-secret" => Signatures.Sign(body, "other-secret"),
            "tampered" => Signatures.Sign(Encoding.UTF8.GetBytes(SampleEvents.Identify), "s3cret"),
            _ => "sha256=not-hex",
        };

        var response = await host.PostAsync("/api/events", body, signature: signature);

        AssertProblem(response, 401);
        Assert.Contains("does not match", response.Body.GetProperty("detail").GetString()!);
        Assert.DoesNotContain("s3cret", response.Body.GetRawText());
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task Events_WithSigningSecret_ChecksSignatureBeforeContentType()
    {
        var host = new IngestHost(new IngestOptions { SigningSecret = "s3cret" });

        var response = await host.PostAsync("/api/events", SampleEvents.Track, contentType: "text/html");

        AssertProblem(response, 401);
    }

    [TestMethod]
    public async Task Events_QueueFails_Answers503WithRetryAfterAndClaimsNothing()
    {
        var host = new IngestHost();
        host.Queue.Failure = new ServiceBusException("namespace unreachable", ServiceBusFailureReason.ServiceCommunicationProblem);
        host.Queue.EnqueueBeforeFailure = 1;

        var response = await host.PostAsync("/api/events", SampleEvents.TrackArray(3));

        AssertProblem(response, 503);
        Assert.AreEqual("10", response.Headers.RetryAfter.ToString());
        Assert.IsFalse(response.Body.TryGetProperty("messageIds", out _));
        Assert.DoesNotContain("m-0", response.Body.GetRawText());
    }

    [TestMethod]
    [DataRow("busy")]
    [DataRow("timeout")]
    [DataRow("request-failed")]
    [DataRow("unauthorized")]
    public async Task Events_QueueFaultKinds_Answer503(string kind)
    {
        var host = new IngestHost(new IngestOptions { RetryAfter = TimeSpan.FromSeconds(42) });
        host.Queue.Failure = kind switch
        {
            "busy" => new ServiceBusException("busy", ServiceBusFailureReason.ServiceBusy),
            "timeout" => new TimeoutException("timed out"),
            "request-failed" => new Azure.RequestFailedException(500, "server error"),
            _ => new UnauthorizedAccessException("no Data Sender role"),
        };

        var response = await host.PostAsync("/api/events", SampleEvents.Track);

        AssertProblem(response, 503);
        Assert.AreEqual("42", response.Headers.RetryAfter.ToString());
    }

    [TestMethod]
    public async Task Events_QueueNeverAnswers_Answers503AfterSendTimeout()
    {
        var host = new IngestHost(new IngestOptions { SendTimeout = TimeSpan.FromSeconds(5) });
        host.Queue.Block = new TaskCompletionSource().Task;

        var pending = host.PostAsync("/api/events", SampleEvents.Track);
        await host.Queue.SendStarted.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.CancellationToken);
        host.Time.Advance(TimeSpan.FromSeconds(5));
        var response = await pending.WaitAsync(TimeSpan.FromSeconds(30), TestContext.CancellationToken);

        AssertProblem(response, 503);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task Events_QueueThrowsBug_IsNotDisguisedAs503()
    {
        var host = new IngestHost();
        host.Queue.Failure = new InvalidOperationException("bug");

        await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => host.PostAsync("/api/events", SampleEvents.Track));
    }

    [TestMethod]
    public async Task TypedRoute_UnknownType_Answers404AndEnqueuesNothing()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/v1/purchase", """{"userId":"u-1"}""");

        AssertProblem(response, 404);
        Assert.Contains("'purchase'", response.Body.GetProperty("detail").GetString()!);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task Events_BodyWithUtf8ByteOrderMark_IsAccepted()
    {
        var host = new IngestHost();
        byte[] body = [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(SampleEvents.Track)];

        var response = await host.PostAsync("/api/events", body);

        Assert.AreEqual(202, response.Status);
        Assert.AreEqual("m-track", host.Queue.Sent.Single().MessageId);
    }

    [TestMethod]
    public async Task Events_PageWithoutSendPageAsTrack_IsAcceptedBecauseSkippingIsNotAnError()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", SampleEvents.Page);

        Assert.AreEqual(202, response.Status);
    }

    private static byte[] PaddedArray(int totalBytes)
    {
        // An array of valid events padded with whitespace to exactly totalBytes.
        var events = Encoding.UTF8.GetBytes(SampleEvents.TrackArray(3));
        var body = new byte[totalBytes];
        body.AsSpan().Fill((byte)' ');
        events.AsSpan(0, events.Length - 1).CopyTo(body);
        body[^1] = (byte)']';
        return body;
    }

    private static void CollectionAssertEqual(string[] expected, string[] actual) =>
        Assert.AreEqual(string.Join("|", expected), string.Join("|", actual));

    private sealed class NeverReadStream : MemoryStream
    {
        public bool WasRead { get; private set; }

        public override int Read(byte[] buffer, int offset, int count)
        {
            WasRead = true;
            return 0;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            WasRead = true;
            return ValueTask.FromResult(0);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            WasRead = true;
            return Task.FromResult(0);
        }
    }
}
