using System.Text;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Klaviyo.Functions.Tests.Ingest;

/// <summary>Issue 9, items 4–6 at the handler: text the sender got wrong, bounded answers, bounded body memory,
/// stopping.</summary>
[TestClass]
public sealed class IngestTextAndLimitsTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task LoneHighSurrogate_InEventName_AcceptsWithReplacementCharacterAndCounts()
    {
        var host = new IngestHost();
        using var replaced = new MetricCollector<long>(host.MeterFactory, "Klaviyo.Relay", IngestMetrics.LoneSurrogatesReplacedName);
        var body = "[" + string.Join(",", Enumerable.Range(0, 99).Select(i => SampleEvents.TrackWithId($"ok-{i}"))) + ","
            + """{"type":"track","messageId":"cut","userId":"u-1","event":"Loved it \ud83d"}""" + "]";

        var response = await host.PostAsync("/api/events", body);

        Assert.AreEqual(202, response.Status);
        Assert.AreEqual(100, response.Body.GetProperty("accepted").GetInt32());
        var cut = IngestHost.BodyOf(host.Queue.Sent.Single(e => e.MessageId == "cut"));
        Assert.AreEqual("Loved it \uFFFD", cut.GetProperty("event").GetString());
        Assert.AreEqual(1, replaced.GetMeasurementSnapshot().EvaluateAsCounter());
    }

    [TestMethod]
    [DataRow("lone low", "\\udc00 x", "\uFFFD x", 1)]
    [DataRow("high then text", "\\ud83dabc", "\uFFFDabc", 1)]
    [DataRow("two highs", "\\ud83d\\ud83d", "\uFFFD\uFFFD", 2)]
    [DataRow("reversed pair", "\\ude00\\ud83d", "\uFFFD\uFFFD", 2)]
    [DataRow("high at end after pair", "\\ud83d\\ude00\\ud83d", "\U0001F600\uFFFD", 1)]
    [DataRow("valid pair untouched", "\\ud83d\\ude00", "\U0001F600", 0)]
    [DataRow("escaped backslash before u", "\\\\ud83d", "\\ud83d", 0)]
    [DataRow("upper-case hex", "\\uD83D!", "\uFFFD!", 1)]
    [DataRow("pair split by escape", "\\ud83d\\n\\ude00", "\uFFFD\n\uFFFD", 2)]
    public async Task LoneSurrogate_Kinds_ReplacedExactlyWhereLone(string name, string escapedText, string expected, int count)
    {
        var host = new IngestHost();
        using var replaced = new MetricCollector<long>(host.MeterFactory, "Klaviyo.Relay", IngestMetrics.LoneSurrogatesReplacedName);

        var response = await host.PostAsync("/api/events", $$$"""{"type":"track","messageId":"s","userId":"u-1","event":"e","properties":{"note":"{{{escapedText}}}"}}""");

        Assert.AreEqual(202, response.Status, name + response.Body.GetRawText());
        Assert.AreEqual(expected, IngestHost.BodyOf(host.Queue.Sent.Single()).GetProperty("properties").GetProperty("note").GetString(), name);
        Assert.AreEqual(count, replaced.GetMeasurementSnapshot().EvaluateAsCounter(), name);
    }

    [TestMethod]
    public async Task LoneSurrogate_InPropertyName_Accepted()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", """{"type":"track","messageId":"id-1","userId":"u-1","event":"e","properties":{"k\udc00":1}}""");

        Assert.AreEqual(202, response.Status);
        var queued = host.Queue.Sent.Single();
        Assert.AreEqual("id-1", queued.MessageId);
        Assert.AreEqual(1, IngestHost.BodyOf(queued).GetProperty("properties").GetProperty("k\uFFFD").GetInt32());
    }

    /// <summary>Issue 18 item 3: ids that differ only in a lone surrogate were all rewritten to one id and deduplicated
    /// away; each is refused, naming the field, and nothing of the request is queued.</summary>
    [TestMethod]
    [DataRow("\\ud800")]
    [DataRow("\\ud801")]
    [DataRow("\\udc00")]
    [DataRow("\\uD83D")]
    [DataRow("\\ud83d\\ud83d\\ude00")]
    public async Task LoneSurrogate_InMessageId_Answers400NamingMessageIdAndQueuesNothing(string escaped)
    {
        var host = new IngestHost();
        var body = "[" + SampleEvents.TrackWithId("fine-1") + "," + $$$"""{"type":"track","messageId":"order-{{{escaped}}}","userId":"u-1","event":"e","properties":{"note":"\ud83d"}}""" + "]";

        var response = await host.PostAsync("/api/events", body);

        AssertProblem(response, 400);
        var error = response.Errors.Single();
        Assert.AreEqual(1, error.GetProperty("index").GetInt32());
        Assert.AreEqual("messageId", error.GetProperty("field").GetString());
        Assert.Contains("lone UTF-16 surrogate", error.GetProperty("message").GetString()!);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task InvalidUtf8_InEventName_Answers400NamingEventAndFieldAndEnqueuesNothing()
    {
        var host = new IngestHost();
        var body = Concat($"[{SampleEvents.Track},", """{"type":"track","messageId":"latin1","userId":"u-1","event":"Order """, new byte[] { 0xE9 }, """ Completed"}]""");

        var response = await host.PostAsync("/api/events", body);

        AssertProblem(response, 400);
        var error = response.Errors.Single();
        Assert.AreEqual(1, error.GetProperty("index").GetInt32());
        Assert.AreEqual("latin1", error.GetProperty("messageId").GetString());
        Assert.AreEqual("event", error.GetProperty("field").GetString());
        Assert.Contains("not UTF-8", error.GetProperty("message").GetString()!);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    [DataRow("truncated two-byte", new byte[] { 0xC3 })]
    [DataRow("overlong slash", new byte[] { 0xC0, 0xAF })]
    [DataRow("UTF-8 encoded surrogate", new byte[] { 0xED, 0xA0, 0xBD })]
    [DataRow("lone continuation", new byte[] { 0x80 })]
    [DataRow("beyond U+10FFFF", new byte[] { 0xF4, 0x90, 0x80, 0x80 })]
    [DataRow("0xFF", new byte[] { 0xFF })]
    public async Task InvalidUtf8_Kinds_InNestedValue_Answer400WithPath(string name, byte[] bad)
    {
        var host = new IngestHost();
        var body = Concat("""{"type":"track","messageId":"m","userId":"u-1","event":"e","properties":{"items":[{"sku":"a"},{"sku":"x""", bad, "\"}]}}");

        var response = await host.PostAsync("/api/events", body);

        AssertProblem(response, 400);
        var error = response.Errors.Single();
        Assert.AreEqual("properties.items[1].sku", error.GetProperty("field").GetString(), name);
        Assert.AreEqual(0, error.GetProperty("index").GetInt32(), name);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task InvalidUtf8_InPropertyName_Answers400NamingIt()
    {
        var host = new IngestHost();
        var body = Concat("""{"batch":[""", SampleEvents.Track, """,{"type":"identify","messageId":"n","userId":"u","traits":{"na""", new byte[] { 0xFE }, "me\":\"x\"}}]}");

        var response = await host.PostAsync("/api/v1/batch", body);

        AssertProblem(response, 400);
        var error = response.Errors.Single();
        Assert.AreEqual(1, error.GetProperty("index").GetInt32());
        Assert.AreEqual("traits.na\uFFFDme", error.GetProperty("field").GetString());
        Assert.Contains("property name", error.GetProperty("message").GetString()!);
    }

    [TestMethod]
    [DataRow("1e400", "properties.revenue")]
    [DataRow("-1e400", "properties.revenue")]
    [DataRow("1.8e308", "properties.revenue")]
    public async Task NumberOutsideDouble_Answers400NamingPath(string number, string field)
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", $$$"""{"type":"track","messageId":"big","userId":"u-1","event":"Order Completed","properties":{"revenue":{{{number}}}}}""");

        AssertProblem(response, 400);
        var error = response.Errors.Single();
        Assert.AreEqual(field, error.GetProperty("field").GetString());
        Assert.AreEqual("big", error.GetProperty("messageId").GetString());
        Assert.Contains(number, error.GetProperty("message").GetString()!);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task NumberOutsideDouble_DeepInContextArray_NamesFullPath()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", """[{"type":"identify","userId":"u","traits":{"email":"a@b.co"},"context":{"list":[1,[2,1e999]]}}]""");

        AssertProblem(response, 400);
        Assert.AreEqual("context.list[1][1]", response.Errors.Single().GetProperty("field").GetString());
    }

    [TestMethod]
    public async Task TinyNumber_UnderflowsToZero_IsAccepted()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", """{"type":"track","userId":"u-1","event":"e","properties":{"p":1e-400}}""");

        Assert.AreEqual(202, response.Status);
    }

    [TestMethod]
    [DataRow("LF", "a\\nb", 0x0A)]
    [DataRow("CR", "a\\rb", 0x0D)]
    [DataRow("NUL", "a\\u0000b", 0x00)]
    [DataRow("TAB", "\\tb", 0x09)]
    [DataRow("DEL", "a\\u007fb", 0x7F)]
    [DataRow("C1 NEL", "a\\u0085b", 0x85)]
    [DataRow("ESC", "\\u001b[31m", 0x1B)]
    public async Task MessageIdWithControlCharacter_Answers400NamingMessageId(string name, string escaped, int code)
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", $$"""{"type":"track","messageId":"{{escaped}}","userId":"u-1","event":"e"}""");

        AssertProblem(response, 400);
        var error = response.Errors.Single();
        Assert.AreEqual("messageId", error.GetProperty("field").GetString(), name);
        Assert.Contains($"U+{code:X4}", error.GetProperty("message").GetString()!, name);
        Assert.AreEqual(System.Text.Json.JsonValueKind.Null, error.GetProperty("messageId").ValueKind, "the bad id is not echoed");
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task ArrayOfTwoThousandNumbers_ListsHundredProblemsAndCountsTheRest()
    {
        var host = new IngestHost();
        var body = "[" + string.Join(",", Enumerable.Repeat("1", 2000)) + "]";

        var response = await host.PostAsync("/api/events", body);

        AssertProblem(response, 400);
        Assert.HasCount(100, response.Errors);
        Assert.AreEqual(99, response.Errors[^1].GetProperty("index").GetInt32());
        Assert.AreEqual(1900, response.Body.GetProperty("errorsNotListed").GetInt32());
        Assert.Contains("2000 problem(s)", response.Body.GetProperty("detail").GetString()!);
    }

    /// <summary>Issue 18 item 5: two million elements lifted memory by about 190 MB while parsed; now the scan stops at
    /// the first element beyond the limit, before any parse.</summary>
    [TestMethod]
    public async Task FourMegabytesOfOnes_Answers413NamingTheEventLimit_AndHoldsNothingAfter()
    {
        var host = new IngestHost();
        var body = new byte[host.Options.MaxRequestBytes];
        body[0] = (byte)'[';
        for (var i = 1; i < body.Length - 1; i += 2)
        {
            body[i] = (byte)'1';
            body[i + 1] = (byte)',';
        }
        body[^2] = (byte)'1';
        body[^1] = (byte)']';

        var response = await host.PostAsync("/api/events", body);

        AssertProblem(response, 413);
        Assert.AreEqual("urn:klaviyo-relay:problem:too-many-events", response.Body.GetProperty("type").GetString());
        Assert.Contains("more than 10000 events (setting Ingest__MaxEventsPerRequest)", response.Body.GetProperty("detail").GetString()!);
        Assert.AreEqual(0, host.Admission.ReservedBytes);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    [DataRow("array", false)]
    [DataRow("batch", true)]
    public async Task EventsUpToTheLimit_Accepted_OneMore_Answers413(string shape, bool batch)
    {
        var host = new IngestHost(new IngestOptions { MaxEventsPerRequest = 5 });
        string Body(int count)
        {
            var events = string.Join(",", Enumerable.Range(0, count).Select(i => SampleEvents.TrackWithId($"{shape}-{count}-{i}")));
            return batch ? $$"""{"batch":[{{events}}]}""" : $"[{events}]";
        }

        var atLimit = await host.PostAsync(batch ? "/api/v1/batch" : "/api/events", Body(5));
        var over = await host.PostAsync(batch ? "/api/v1/batch" : "/api/events", Body(6));

        Assert.AreEqual(202, atLimit.Status, atLimit.Body.GetRawText());
        AssertProblem(over, 413);
        Assert.Contains("Ingest__MaxEventsPerRequest", over.Body.GetProperty("detail").GetString()!);
        Assert.HasCount(5, host.Queue.Sent);
    }

    /// <summary>The parse of a body is held in the in-flight budget while it is checked: with the budget mostly held by
    /// a stalled upload, a dense body waits (503), and alone it goes through.</summary>
    [TestMethod]
    public async Task DenseBody_WhileTheBudgetIsHeld_Answers503_AndAloneIsAccepted()
    {
        var host = new IngestHost(new IngestOptions { MaxRequestBytes = 64 * 1024, MaxEventBytes = 32 * 1024, MaxInFlightBodyBytes = 128 * 1024, MinBodyBytesPerSecond = 0 });
        using var busy = new MetricCollector<long>(host.MeterFactory, "Klaviyo.Relay", IngestMetrics.BusyName);
        var first = new TrickleStream(Encoding.UTF8.GetBytes("[" + new string(' ', 40 * 1024)));
        var pending = host.PostAsync("/api/events", first, contentLength: null);
        await first.Stalled.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.CancellationToken);
        // About 10,000 tokens in 20 KB: a parse of about 240 KB, more than the 32 KB of budget left (64 KB held + its own 32 KB).
        var dense = """{"type":"track","messageId":"dense","userId":"u-1","event":"e","properties":{"a":[""" + string.Join(",", Enumerable.Repeat("1", 10_000)) + "]}}";

        var refused = await host.PostAsync("/api/events", dense);

        AssertProblem(refused, 503);
        Assert.Contains("Ingest__MaxInFlightBodyBytes", refused.Body.GetProperty("detail").GetString()!);
        Assert.ContainsSingle(busy.GetMeasurementSnapshot().Where(m => Equals(m.Tags["reason"], "parse-memory")));
        first.Finish();
        await pending.WaitAsync(TimeSpan.FromSeconds(10), TestContext.CancellationToken);
        var alone = await host.PostAsync("/api/events", dense);
        Assert.AreEqual(202, alone.Status, alone.Body.GetRawText());
        Assert.AreEqual(0, host.Admission.ReservedBytes);
    }

    [TestMethod]
    public async Task ManyInvalidNumbersInOneEvent_ListsHundred()
    {
        var host = new IngestHost();
        var body = """{"type":"track","messageId":"m","userId":"u","event":"e","properties":{"a":[""" + string.Join(",", Enumerable.Repeat("1e400", 500)) + "]}}";

        var response = await host.PostAsync("/api/events", body);

        AssertProblem(response, 400);
        Assert.HasCount(100, response.Errors);
        Assert.AreEqual(400, response.Body.GetProperty("errorsNotListed").GetInt32());
        Assert.AreEqual("m", response.Errors[99].GetProperty("messageId").GetString(), "messageId named though it came first");
    }

    [TestMethod]
    public async Task SlowUploadDeclaringFourMegabytes_HoldsOnlyWhatArrived()
    {
        var host = new IngestHost();
        var stream = new TrickleStream(Encoding.UTF8.GetBytes("[{\"type\":"));

        var pending = host.PostAsync("/api/events", stream, contentLength: host.Options.MaxRequestBytes);
        await stream.Stalled.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.CancellationToken);

        Assert.AreEqual(16 * 1024, host.Admission.ReservedBytes, "one initial 16 KB buffer, not the declared 4 MB");
        stream.Finish();
        await pending.WaitAsync(TimeSpan.FromSeconds(10), TestContext.CancellationToken);
        Assert.AreEqual(0, host.Admission.ReservedBytes, "given back");
    }

    [TestMethod]
    public async Task BodiesBeyondInFlightBudget_Answer503WithRetryAfterAndRecover()
    {
        // Eviction off: the budget is held by a body the ingest may not take back (SlowUploadTests covers eviction).
        var host = new IngestHost(new IngestOptions { MaxRequestBytes = 64 * 1024, MaxInFlightBodyBytes = 64 * 1024, RetryAfter = TimeSpan.FromSeconds(7), MinBodyBytesPerSecond = 0 });
        using var busy = new MetricCollector<long>(host.MeterFactory, "Klaviyo.Relay", IngestMetrics.BusyName);
        // The first request has sent 40 KB (a 64 KB buffer) and stalls: the budget is spent.
        var first = new TrickleStream(Encoding.UTF8.GetBytes("[" + new string(' ', 40 * 1024)));
        var pending = host.PostAsync("/api/events", first, contentLength: null);
        await first.Stalled.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.CancellationToken);

        var refused = await host.PostAsync("/api/events", SampleEvents.Track);

        AssertProblem(refused, 503);
        Assert.AreEqual("7", refused.Headers.RetryAfter.ToString());
        Assert.Contains("Ingest__MaxInFlightBodyBytes", refused.Body.GetProperty("detail").GetString()!);
        Assert.ContainsSingle(busy.GetMeasurementSnapshot().Where(m => Equals(m.Tags["reason"], "body-memory")));
        Assert.IsEmpty(host.Queue.Sent);

        first.Finish();
        await pending.WaitAsync(TimeSpan.FromSeconds(10), TestContext.CancellationToken);
        var later = await host.PostAsync("/api/events", SampleEvents.Track);
        Assert.AreEqual(202, later.Status);
        Assert.AreEqual(0, host.Admission.ReservedBytes);
    }

    [TestMethod]
    public async Task BodyOfExactlyMaxRequestBytes_IsReadWithoutADoubleSizedBuffer()
    {
        var host = new IngestHost(new IngestOptions { MaxRequestBytes = 64 * 1024, MaxInFlightBodyBytes = 64 * 1024 });
        var body = Encoding.UTF8.GetBytes(SampleEvents.Track.PadRight(64 * 1024));

        var response = await host.PostAsync("/api/events", body);

        Assert.AreEqual(202, response.Status, "fits a budget of one maximum-size body");
        Assert.AreEqual(0, host.Admission.ReservedBytes);
    }

    [TestMethod]
    public async Task BodyOneByteOverMax_Answers413AndGivesBudgetBack()
    {
        var host = new IngestHost(new IngestOptions { MaxRequestBytes = 64 * 1024, MaxInFlightBodyBytes = 64 * 1024 });
        var body = Encoding.UTF8.GetBytes(SampleEvents.Track.PadRight(64 * 1024 + 1));

        var response = await host.PostAsync("/api/events", body, sendContentLength: false);

        AssertProblem(response, 413);
        Assert.AreEqual(0, host.Admission.ReservedBytes);
    }

    [TestMethod]
    public async Task Stopping_Answers503WithRetryAfterAndEnqueuesNothing()
    {
        var host = new IngestHost(new IngestOptions { RetryAfter = TimeSpan.FromSeconds(3) });
        host.Admission.BeginStopping();

        var response = await host.PostAsync("/api/events", SampleEvents.Track);

        AssertProblem(response, 503);
        Assert.AreEqual("3", response.Headers.RetryAfter.ToString());
        Assert.AreEqual("urn:klaviyo-relay:problem:stopping", response.Body.GetProperty("type").GetString());
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    [DataRow(1024L * 1024, "Ingest__MaxInFlightBodyBytes must be between 4194304")]
    [DataRow(65L * 1024 * 1024 * 1024, "Ingest__MaxInFlightBodyBytes must be between 4194304")]
    public void Options_InFlightBudgetOutOfRange_FailsNamingSetting(long value, string expected)
    {
        var result = new IngestOptionsValidator().Validate(null, new IngestOptions { MaxInFlightBodyBytes = value });

        Assert.IsTrue(result.Failed);
        Assert.Contains(expected, result.FailureMessage);
    }

    [TestMethod]
    public void Options_InFlightBudgetForFiveMegabyteRequests_NeedsEightMegabytes()
    {
        var validator = new IngestOptionsValidator();

        Assert.IsTrue(validator.Validate(null, new IngestOptions { MaxRequestBytes = 5 * 1024 * 1024, MaxInFlightBodyBytes = 6 * 1024 * 1024 }).Failed);
        Assert.IsTrue(validator.Validate(null, new IngestOptions { MaxRequestBytes = 5 * 1024 * 1024, MaxInFlightBodyBytes = 8 * 1024 * 1024 }).Succeeded);
    }

    [TestMethod]
    [DataRow("a\r\nforged line", "a\\r\\nforged line")]
    [DataRow("nul\0", "nul\\0")]
    [DataRow("esc\u001b[2J", "esc\\u001B[2J")]
    [DataRow("plain", "plain")]
    public void LogText_EscapesControlCharacters(string raw, string expected) =>
        Assert.AreEqual(expected, global::Klaviyo.Functions.Diagnostics.LogText.Escape(raw));

    private static byte[] Concat(params object[] parts)
    {
        var bytes = new List<byte>();
        foreach (var part in parts)
        {
            bytes.AddRange(part is string text ? Encoding.UTF8.GetBytes(text) : (byte[])part);
        }
        return [.. bytes];
    }

    private static void AssertProblem(IngestResponse response, int status)
    {
        Assert.AreEqual(status, response.Status, response.Body.GetRawText());
        Assert.AreEqual("application/problem+json", response.ContentType);
        Assert.AreEqual(status, response.Body.GetProperty("status").GetInt32());
    }

    /// <summary>Gives its bytes, then blocks until <see cref="Finish"/> (a client that stopped sending), then ends.</summary>
    private sealed class TrickleStream(byte[] first) : Stream
    {
        private readonly TaskCompletionSource _finish = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _position;

        public TaskCompletionSource Stalled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Finish() => _finish.TrySetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position < first.Length)
            {
                var count = Math.Min(buffer.Length, first.Length - _position);
                first.AsMemory(_position, count).CopyTo(buffer);
                _position += count;
                return count;
            }
            Stalled.TrySetResult();
            await _finish.Task.WaitAsync(cancellationToken);
            return 0;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() { }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
