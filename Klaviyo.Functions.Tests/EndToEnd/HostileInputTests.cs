using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>
/// Issue 9, "Show": the built app in local mode (a child process, as <see cref="LocalModeTests"/>) with a fake
/// Klaviyo, fed hostile requests over a raw socket. Each answer is asserted (status, <c>application/problem+json</c>,
/// never 500), health is asserted after each, and a sentinel event sent after each must be the only thing (with the
/// case's own events when it is accepted) that reaches Klaviyo: nothing of a refused request is delivered.
/// </summary>
[TestClass]
// Its cases share one app and one fake Klaviyo (the sentinel check counts what reached it): one at a time.
[DoNotParallelize]
public sealed class HostileInputTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private static readonly List<HostileCase> Cases = BuildCases();
    private static FakeKlaviyo? s_klaviyo;
    private static LocalAppProcess? s_app;
    private static string? s_deadLetters;

    public TestContext TestContext { get; set; } = null!;

    /// <param name="Status">The expected answer.</param>
    /// <param name="Field">A field the problem must name, when the case is about one.</param>
    /// <param name="KlaviyoCalls">Calls the accepted case makes (0 when refused).</param>
    /// <param name="KestrelOwnAnswer">Kestrel refuses these before any application code runs, with an empty body that
    /// the app cannot replace (aspnet/KestrelHttpServer#2947): status asserted, no problem document.</param>
    public sealed record HostileCase(string Name, byte[] Request, int Status, string? Field = null, int KlaviyoCalls = 0, bool KestrelOwnAnswer = false)
    {
        public override string ToString() => Name;
    }

    public static IEnumerable<object[]> CaseNames => Cases.Select(c => new object[] { c.Name });

    private static readonly Lazy<Dictionary<string, HostileCase>> ByName = new(() => Cases.ToDictionary(c => c.Name));

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        s_klaviyo = FakeKlaviyo.Start()
            .Answer("/api/events", 202)
            .Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("01HOSTILE"));
        s_deadLetters = Path.Combine(Path.GetTempPath(), $"klaviyo-hostile-{Guid.NewGuid():N}.jsonl");
        s_app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = "pk_hostile_secret",
            ["Klaviyo__BaseUrl"] = s_klaviyo.BaseUrl,
            ["Local__DeadLetterPath"] = s_deadLetters,
            ["Relay__InCallRetryDelay"] = "00:00:00.1",
        }, Patience);
    }

    [ClassCleanup]
    public static async Task StopAsync()
    {
        if (s_app is not null)
        {
            await s_app.DisposeAsync();
        }
        s_klaviyo?.Dispose();
    }

    [TestMethod]
    public void Suite_HasAtLeast120DistinctKinds()
    {
        Assert.IsGreaterThanOrEqualTo(120, Cases.Count);
        Assert.HasCount(Cases.Count, Cases.Select(c => c.Name).Distinct());
        Assert.HasCount(Cases.Count, Cases.Select(c => Convert.ToBase64String(c.Request)).Distinct(), "each case sends different bytes");
    }

    [TestMethod]
    [DynamicData(nameof(CaseNames))]
    public async Task HostileRequest_AnsweredPreciselyAndNothingRefusedReachesKlaviyo(string name)
    {
        var hostile = ByName.Value[name];
        var app = s_app!;
        var klaviyo = s_klaviyo!;
        var before = klaviyo.Received.Count;

        var response = await SendRawAsync(app.BaseUrl, hostile.Request, TestContext.CancellationToken);

        Assert.AreNotEqual(500, response.Status, response.ToString());
        Assert.AreEqual(hostile.Status, response.Status, response.ToString());
        if (hostile.KestrelOwnAnswer)
        {
            Assert.AreEqual("0", response.Header("Content-Length"), response.ToString());
        }
        else
        {
            Assert.AreEqual(hostile.Status == 202 ? "application/json" : "application/problem+json", response.Header("Content-Type"), response.ToString());
            using var document = JsonDocument.Parse(response.Body);
            if (hostile.Status != 202)
            {
                Assert.AreEqual(hostile.Status, document.RootElement.GetProperty("status").GetInt32());
                Assert.StartsWith("urn:klaviyo-relay:problem:", document.RootElement.GetProperty("type").GetString()!);
                Assert.IsLessThan(64 * 1024, response.Body.Length, "the answer is bounded");
                if (hostile.Field is not null)
                {
                    var fields = document.RootElement.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("field").GetString()).ToList();
                    Assert.Contains(hostile.Field, fields, response.ToString());
                }
            }
        }

        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        using (var health = await http.GetAsync("/api/health", TestContext.CancellationToken))
        {
            Assert.AreEqual(HttpStatusCode.OK, health.StatusCode, "healthy after " + name);
        }

        var sentinel = $"sentinel-{Guid.NewGuid():N}";
        using (var sent = await http.PostAsync("/api/events", new StringContent($$"""{"type":"track","messageId":"{{sentinel}}","userId":"u-sentinel","event":"Sentinel"}""", Encoding.UTF8, "application/json"), TestContext.CancellationToken))
        {
            Assert.AreEqual(HttpStatusCode.Accepted, sent.StatusCode, "the ingest still takes events after " + name);
        }
        var expected = before + hostile.KlaviyoCalls + 1;
        var deadline = DateTime.UtcNow + Patience;
        while (klaviyo.Received.Count < expected && DateTime.UtcNow < deadline)
        {
            await Task.Delay(25, TestContext.CancellationToken);
        }
        await Task.Delay(150, TestContext.CancellationToken);
        var arrived = klaviyo.Received.Skip(before).ToList();
        Assert.HasCount(hostile.KlaviyoCalls + 1, arrived, string.Join("\n", arrived.Select(a => a.Path + " " + a.Body)));
        Assert.ContainsSingle(arrived.Where(a => a.Body.Contains(sentinel, StringComparison.Ordinal)));
        Assert.DoesNotContain(true, arrived.Select(a => a.Body.Contains("REFUSED", StringComparison.Ordinal)).ToList(), "nothing of a refused request reached Klaviyo");
        Assert.IsFalse(File.Exists(s_deadLetters), "nothing was dead-lettered");
    }

    private static List<HostileCase> BuildCases()
    {
        var cases = new List<HostileCase>();
        void Add(string name, byte[] request, int status, string? field = null, int calls = 0, bool kestrel = false) =>
            cases.Add(new HostileCase(name, request, status, field, calls, kestrel));
        void Body(string name, string body, int status, string? field = null, int calls = 0) =>
            Add(name, Post("/api/events", Encoding.UTF8.GetBytes(body)), status, field, calls);
        void Bytes(string name, byte[] body, int status, string? field = null) =>
            Add(name, Post("/api/events", body), status, field);

        const string Ok = "\"type\":\"track\",\"userId\":\"u-REFUSED\",\"event\":\"E\"";

        // Malformed JSON.
        Body("malformed: empty body", "", 400, "");
        Body("malformed: whitespace only", " \r\n\t ", 400, "");
        Body("malformed: lone open brace", "{", 400, "");
        Body("malformed: lone close brace", "}", 400, "");
        Body("malformed: lone open bracket", "[", 400, "");
        Body("malformed: truncated object", """{"type":"track","userId":"u-REFUSED""", 400, "");
        Body("malformed: truncated string", """{"type":"track","userId":"u-REF""", 400, "");
        Body("malformed: trailing comma in object", "{" + Ok + ",}", 400, "");
        Body("malformed: trailing comma in array", "[{" + Ok + "},]", 400, "");
        Body("malformed: single quotes", "{'type':'track','userId':'u-REFUSED'}", 400, "");
        Body("malformed: unquoted keys", "{type:\"track\",userId:\"u-REFUSED\"}", 400, "");
        Body("malformed: NaN literal", "{" + Ok + ",\"properties\":{\"v\":NaN}}", 400, "");
        Body("malformed: Infinity literal", "{" + Ok + ",\"properties\":{\"v\":Infinity}}", 400, "");
        Body("malformed: line comment", "// c\n{" + Ok + "}", 400, "");
        Body("malformed: block comment", "{" + Ok + "/* c */}", 400, "");
        Body("malformed: two top-level values", "{" + Ok + "}{" + Ok + "}", 400, "");
        Body("malformed: garbage text", "REFUSED garbage", 400, "");
        Body("malformed: raw tab in string", "{" + Ok + ",\"properties\":{\"v\":\"a\tb\"}}", 400, "");
        Body("malformed: raw newline in string", "{" + Ok + ",\"properties\":{\"v\":\"a\nb\"}}", 400, "");
        Body("malformed: invalid escape", "{" + Ok + ",\"properties\":{\"v\":\"\\x41\"}}", 400, "");
        Body("malformed: short unicode escape", "{" + Ok + ",\"properties\":{\"v\":\"\\u12\"}}", 400, "");
        Body("malformed: non-hex unicode escape", "{" + Ok + ",\"properties\":{\"v\":\"\\uZZZZ\"}}", 400, "");
        Body("malformed: leading zero", "{" + Ok + ",\"properties\":{\"v\":01}}", 400, "");
        Body("malformed: plus sign", "{" + Ok + ",\"properties\":{\"v\":+1}}", 400, "");
        Body("malformed: bare fraction", "{" + Ok + ",\"properties\":{\"v\":.5}}", 400, "");
        Body("malformed: trailing dot", "{" + Ok + ",\"properties\":{\"v\":1.}}", 400, "");
        Body("malformed: lone minus", "{" + Ok + ",\"properties\":{\"v\":-}}", 400, "");
        Body("malformed: hex number", "{" + Ok + ",\"properties\":{\"v\":0x10}}", 400, "");
        Body("malformed: missing colon", "{\"type\" \"track\"}", 400, "");
        Body("malformed: missing value", "{\"type\":}", 400, "");
        Body("malformed: key without value at end", "{\"type\"}", 400, "");
        Body("malformed: True capitalised", "{" + Ok + ",\"properties\":{\"v\":True}}", 400, "");
        Body("malformed: undefined", "{" + Ok + ",\"properties\":{\"v\":undefined}}", 400, "");
        Body("deep: 65 nested arrays in properties", "{" + Ok + ",\"properties\":{\"v\":" + new string('[', 65) + new string(']', 65) + "}}", 400, "");
        Body("deep: 200 nested objects", string.Concat(Enumerable.Repeat("{\"a\":", 200)) + "1" + new string('}', 200), 400, "");
        Body("deep: 100000 open brackets", new string('[', 100_000), 400, "");
        Body("deep: 60 open brackets never closed", "{" + Ok + ",\"p\":" + new string('[', 60) + "}", 400, "");
        Bytes("malformed: NUL byte between tokens", [.. Encoding.UTF8.GetBytes("{" + Ok + ","), 0, .. "\"x\":1}"u8], 400, "");
        Bytes("malformed: UTF-16LE body with BOM", [0xFF, 0xFE, .. Encoding.Unicode.GetBytes("{" + Ok + "}")], 400, "");
        Bytes("malformed: UTF-16BE body", Encoding.BigEndianUnicode.GetBytes("{" + Ok + "}"), 400, "");
        Bytes("malformed: double byte-order mark", [0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes("{" + Ok + "}")], 400, "");

        // Shapes that are not events.
        Body("shape: root true", "true", 400, "");
        Body("shape: root null", "null", 400, "");
        Body("shape: root string", "\"REFUSED\"", 400, "");
        Body("shape: root number", "42", 400, "");
        Body("shape: empty array", "[]", 400, "");
        Body("shape: empty batch", "{\"batch\":[]}", 400, "batch");
        Body("shape: batch is an object", "{\"batch\":{}}", 400, "batch");
        Body("shape: batch is a string", "{\"batch\":\"REFUSED\"}", 400, "batch");
        Body("shape: array of numbers", "[1,2,3]", 400, "");
        Body("shape: array with null", "[{" + Ok + "},null]", 400, "");
        Body("shape: array of arrays", "[[{" + Ok + "}]]", 400, "");
        Body("shape: array of strings", "[\"REFUSED\"]", 400, "");
        Body("shape: empty object", "{}", 400, "type");
        Body("shape: object of nulls", "{\"type\":null,\"userId\":null}", 400, "type");

        // Numbers a double cannot hold.
        Body("number: 1e400 in properties", "{" + Ok + ",\"properties\":{\"revenue\":1e400}}", 400, "properties.revenue");
        Body("number: -1e400 in traits", "{\"type\":\"identify\",\"userId\":\"u-REFUSED\",\"traits\":{\"score\":-1e400}}", 400, "traits.score");
        Body("number: 1e400 as messageId", "{" + Ok + ",\"messageId\":1e400}", 400, "messageId");
        Body("number: 1e400 as an array element event", "[1e400]", 400, "");
        Body("number: 400-digit integer", "{" + Ok + ",\"properties\":{\"n\":" + new string('9', 400) + "}}", 400, "properties.n");
        Body("number: 1e400 deep in context", "{" + Ok + ",\"context\":{\"a\":[{\"b\":[1,1e400]}]}}", 400, "context.a[0].b[1]");
        Body("number: 1e400 in the batch envelope", "{\"batch\":[{" + Ok + "}],\"sentAt\":1e400}", 400, "sentAt");
        Body("number: 1.8e308 just past the maximum", "{" + Ok + ",\"properties\":{\"value\":1.8e308}}", 400, "properties.value");

        // Bytes that are not UTF-8.
        Bytes("utf8: lone continuation byte in event name", Concat("{\"type\":\"track\",\"userId\":\"u-REFUSED\",\"event\":\"Order ", [0x80], " Done\"}"), 400, "event");
        Bytes("utf8: truncated sequence at end of string", Concat("{\"type\":\"track\",\"userId\":\"u-REFUSED\",\"event\":\"E", [0xE2, 0x82], "\"}"), 400, "event");
        Bytes("utf8: overlong encoding", Concat("{\"type\":\"track\",\"userId\":\"u-REFUSED\",\"event\":\"", [0xC0, 0xAF], "\"}"), 400, "event");
        Bytes("utf8: encoded surrogate", Concat("{\"type\":\"track\",\"userId\":\"u-REFUSED\",\"event\":\"", [0xED, 0xA0, 0xBD], "\"}"), 400, "event");
        Bytes("utf8: 0xFF in userId", Concat("{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u-REFUSED", [0xFF], "\"}"), 400, "userId");
        Bytes("utf8: invalid byte in a property name", Concat("{" + Ok + ",\"properties\":{\"k", [0xFE], "\":1}}"), 400, "properties.k\uFFFD");
        Bytes("utf8: invalid byte in messageId", Concat("{" + Ok + ",\"messageId\":\"id-", [0xC3], "\"}"), 400, "messageId");
        Bytes("utf8: Latin-1 text in the third event of a batch", Concat("[{" + Ok + "},{" + Ok + "},{" + Ok + ",\"properties\":{\"city\":\"K", [0xF6], "ln\"}}]"), 400, "properties.city");
        Add("utf8: Latin-1 body declared as charset=iso-8859-1", Post("/api/events", Concat("{" + Ok + ",\"properties\":{\"n\":\"Jos", [0xE9], "\"}}"), "application/json; charset=iso-8859-1"), 400, "properties.n");
        Bytes("utf8: beyond U+10FFFF", Concat("{" + Ok + ",\"properties\":{\"v\":\"", [0xF4, 0x90, 0x80, 0x80], "\"}}"), 400, "properties.v");

        // Lone surrogate escapes: accepted with U+FFFD (one Klaviyo call each).
        Body("surrogate: lone high in event name", """{"type":"track","userId":"u-s1","event":"Loved it \ud83d"}""", 202, calls: 1);
        Body("surrogate: lone low in properties", """{"type":"track","userId":"u-s2","event":"E","properties":{"note":"\udc00"}}""", 202, calls: 1);
        Body("surrogate: lone high in a property name", """{"type":"track","userId":"u-s3","event":"E","properties":{"k\ud800":1}}""", 202, calls: 1);
        Body("surrogate: lone high in messageId", """{"type":"track","messageId":"cut-\ud83d","userId":"u-s4","event":"E"}""", 202, calls: 1);
        Body("surrogate: reversed pair in userId", """{"type":"track","userId":"u-\ude00\ud83d","event":"E"}""", 202, calls: 1);

        // Duplicate keys and ids.
        Body("duplicate: messageId twice in one request", "[{" + Ok + ",\"messageId\":\"dup-REFUSED\"},{" + Ok + ",\"messageId\":\"dup-REFUSED\"}]", 400, "messageId");
        Body("duplicate: numeric and string messageId equal", "[{" + Ok + ",\"messageId\":7},{" + Ok + ",\"messageId\":\"7\"}]", 400, "messageId");

        // Control characters in messageId.
        foreach (var (label, escaped) in new[] { ("LF", "\\n"), ("CR", "\\r"), ("CRLF forged log line", "\\r\\n2026 INFO forged"), ("NUL", "\\u0000"), ("ESC sequence", "\\u001b[2J"), ("DEL", "\\u007f"), ("C1 NEL", "\\u0085"), ("TAB", "\\t"), ("BEL", "\\u0007") })
        {
            Body($"control: messageId with {label}", "{" + Ok + ",\"messageId\":\"REFUSED" + escaped + "\"}", 400, "messageId");
        }
        Body("messageId: empty string", "{" + Ok + ",\"messageId\":\"\"}", 400, "messageId");
        Body("messageId: 129 characters", "{" + Ok + ",\"messageId\":\"" + new string('R', 129) + "\"}", 400, "messageId");

        // Type confusion in the event's fields.
        foreach (var (value, kind) in new[] { ("42", "number"), ("true", "boolean"), ("{}", "object"), ("[]", "array") })
        {
            Body($"type confusion: type is {kind}", "{\"type\":" + value + ",\"userId\":\"u-REFUSED\",\"event\":\"E\"}", 400, "type");
            if (kind != "number")
            {
                Body($"type confusion: messageId is {kind}", "{" + Ok + ",\"messageId\":" + value + "}", 400, "messageId");
            }
        }
        Body("type confusion: type is an unknown string", "{\"type\":\"purchase\",\"userId\":\"u-REFUSED\"}", 400, "type");
        Body("type confusion: type is empty", "{\"type\":\"\",\"userId\":\"u-REFUSED\"}", 400, "type");
        foreach (var (field, value) in new[]
        {
            ("userId", "{}"), ("userId", "[]"), ("userId", "true"),
            ("anonymousId", "{}"), ("anonymousId", "[]"),
            ("event", "42"), ("event", "{}"), ("event", "[]"), ("event", "true"), ("event", "\"\""),
            ("properties", "\"REFUSED\""), ("properties", "[]"), ("properties", "42"),
            ("context", "\"REFUSED\""), ("context", "[]"),
            ("timestamp", "42"), ("timestamp", "\"not a date\""), ("timestamp", "{}"),
            ("properties.revenue", "\"lots\""), ("properties.revenue", "{}"), ("properties.value", "[]"),
            ("properties.currency", "42"), ("context.traits", "\"REFUSED\""), ("context.traits.email", "42"),
        })
        {
            Body($"type confusion: track {field} = {value}", TrackWith(field, value), 400, field);
        }
        foreach (var (field, value) in new[]
        {
            ("traits", "\"REFUSED\""), ("traits", "[]"), ("traits.email", "42"), ("traits.phone", "{}"),
            ("traits.firstName", "[]"), ("traits.address", "\"REFUSED\""), ("traits.properties", "[]"),
        })
        {
            Body($"type confusion: identify {field} = {value}", IdentifyWith(field, value), 400, field);
        }
        Body("type confusion: group groupId is an object", "{\"type\":\"group\",\"userId\":\"u-REFUSED\",\"groupId\":{}}", 400, "groupId");
        // Accepted as they are: not a field the mapping reads as typed, or an event type that is skipped anyway.
        Body("type confusion: track properties.items is a string (not read: accepted)", TrackWith("properties.items", "\"not-a-list\"").Replace("REFUSED", "accepted", StringComparison.Ordinal), 202, calls: 1);
        Body("type confusion: identify traits.email not an address (Klaviyo judges: accepted)", IdentifyWith("traits.email", "\"not-an-email\"").Replace("REFUSED", "accepted", StringComparison.Ordinal), 202, calls: 1);
        Body("type confusion: page name is a number (page is skipped: accepted)", "{\"type\":\"page\",\"userId\":\"u-REFUSED\",\"name\":42}", 202);
        Body("type confusion: alias previousId is an array (alias is skipped: accepted)", "{\"type\":\"alias\",\"userId\":\"u-REFUSED\",\"previousId\":[]}", 202);
        Body("identity: track without any identifier", "{\"type\":\"track\",\"event\":\"REFUSED\"}", 400);

        // Sizes.
        Add("size: declared Content-Length over 4 MB", Encoding.ASCII.GetBytes("POST /api/events HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 4194305\r\n\r\n{}"), 413);
        Add("size: chunked body over 4 MB", Chunked("/api/events", Encoding.UTF8.GetBytes("[" + new string(' ', 4 * 1024 * 1024) + "]"), 64 * 1024), 413);
        Body("size: one event over 32 KB", "{" + Ok + ",\"properties\":{\"blob\":\"" + new string('R', 33 * 1024) + "\"}}", 413);
        Bytes("size: 4 MB of [1,1,...]", OnesArray(4 * 1024 * 1024), 400, "");
        Bytes("size: 1 MB of empty objects", Encoding.ASCII.GetBytes("[" + string.Join(",", Enumerable.Repeat("{}", 350_000)) + "]"), 400, "type");

        // Chunked transfer and framing.
        Add("chunked: bad chunk size", Encoding.ASCII.GetBytes("POST /api/events HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"), 400);
        Add("chunked: chunk longer than declared", Encoding.ASCII.GetBytes("POST /api/events HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"type\":\"track\"}\r\n0\r\n\r\n"), 400);
        Add("chunked: chunk size overflowing a long", Encoding.ASCII.GetBytes("POST /api/events HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n"), 400);
        Add("framing: negative Content-Length", Encoding.ASCII.GetBytes("POST /api/events HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: -5\r\n\r\n{}"), 400, kestrel: true);
        Add("framing: non-numeric Content-Length", Encoding.ASCII.GetBytes("POST /api/events HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ten\r\n\r\n{}"), 400, kestrel: true);

        // Content types.
        foreach (var type in new[] { "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/html", "application/xml", "application/jsonp", "image/png", "application/+json", "not a media type" })
        {
            Add($"content type: {type}", Post("/api/events", Encoding.UTF8.GetBytes("{" + Ok + "}"), type), 415);
        }

        // Framework-level answers.
        Add("route: GET on the ingest", Encoding.ASCII.GetBytes("GET /api/events HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"), 405);
        Add("route: PUT on the ingest", Post("/api/events", Encoding.UTF8.GetBytes("{" + Ok + "}"), method: "PUT"), 405);
        Add("route: DELETE on batch", Encoding.ASCII.GetBytes("DELETE /api/v1/batch HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"), 405);
        Add("route: unknown typed route", Post("/api/v1/purchase", Encoding.UTF8.GetBytes("{\"userId\":\"u-REFUSED\"}")), 404);
        Add("route: unknown path", Post("/api/nothing", Encoding.UTF8.GetBytes("{}")), 404);
        Add("route: typed route disagrees with body", Post("/api/v1/identify", Encoding.UTF8.GetBytes("{" + Ok + "}")), 400, "type");
        Add("headers: 40 KB of headers", Post("/api/events", Encoding.UTF8.GetBytes("{" + Ok + "}"), extraHeaders: "X-Big: " + new string('h', 40 * 1024) + "\r\n"), 431);
        Add("headers: 150 header fields", Post("/api/events", Encoding.UTF8.GetBytes("{" + Ok + "}"), extraHeaders: string.Concat(Enumerable.Range(0, 150).Select(i => $"X-H{i}: v\r\n"))), 431);
        return cases;

        static string TrackWith(string field, string value) => WithField("{\"type\":\"track\",\"userId\":\"u-REFUSED\",\"event\":\"E\"}", field, value);

        static string IdentifyWith(string field, string value) => WithField("{\"type\":\"identify\",\"userId\":\"u-REFUSED\",\"traits\":{\"email\":\"r@example.com\"}}", field, value);
    }

    /// <summary>The event with <paramref name="field"/> (a dotted path) set to the raw JSON <paramref name="value"/>.</summary>
    private static string WithField(string eventJson, string field, string value)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(eventJson)!.AsObject();
        var parts = field.Split('.');
        var target = node;
        foreach (var part in parts[..^1])
        {
            if (target[part] is not System.Text.Json.Nodes.JsonObject child)
            {
                child = [];
                target[part] = child;
            }
            target = child;
        }
        target[parts[^1]] = System.Text.Json.Nodes.JsonNode.Parse(value);
        return node.ToJsonString();
    }

    private static byte[] Post(string path, byte[] body, string? contentType = "application/json", string method = "POST", string extraHeaders = "")
    {
        var head = $"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + (contentType is null ? "" : $"Content-Type: {contentType}\r\n")
            + $"Content-Length: {body.Length}\r\n" + extraHeaders + "\r\n";
        return [.. Encoding.ASCII.GetBytes(head), .. body];
    }

    private static byte[] Chunked(string path, byte[] body, int chunk)
    {
        var output = new MemoryStream();
        output.Write(Encoding.ASCII.GetBytes($"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
        for (var offset = 0; offset < body.Length; offset += chunk)
        {
            var length = Math.Min(chunk, body.Length - offset);
            output.Write(Encoding.ASCII.GetBytes($"{length:x}\r\n"));
            output.Write(body, offset, length);
            output.Write("\r\n"u8);
        }
        output.Write("0\r\n\r\n"u8);
        return output.ToArray();
    }

    private static byte[] OnesArray(int size)
    {
        var body = new byte[size];
        body[0] = (byte)'[';
        for (var i = 1; i < size - 1; i += 2)
        {
            body[i] = (byte)'1';
            body[i + 1] = (byte)',';
        }
        body[^2] = (byte)'1';
        body[^1] = (byte)']';
        return body;
    }

    private static byte[] Concat(string a, byte[] b, string c) => [.. Encoding.UTF8.GetBytes(a), .. b, .. Encoding.UTF8.GetBytes(c)];

    public sealed record RawResponse(int Status, IReadOnlyDictionary<string, string> Headers, byte[] Body)
    {
        public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;

        public override string ToString() =>
            $"{Status} {string.Join("; ", Headers.Select(h => h.Key + ": " + h.Value))}\n{Encoding.UTF8.GetString(Body, 0, Math.Min(Body.Length, 2000))}";
    }

    /// <summary>Sends the bytes as they are on a fresh connection and reads the answer to the end (the requests say
    /// Connection: close). The server may answer and close before the whole request is written.</summary>
    public static async Task<RawResponse> SendRawAsync(string baseUrl, byte[] request, CancellationToken cancellationToken)
    {
        var uri = new Uri(baseUrl);
        using var client = new TcpClient();
        await client.ConnectAsync(uri.Host, uri.Port, cancellationToken);
        using var stream = client.GetStream();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Patience);
        try
        {
            await stream.WriteAsync(request, timeout.Token);
        }
        catch (IOException)
        {
        }
        var received = new MemoryStream();
        try
        {
            await stream.CopyToAsync(received, timeout.Token);
        }
        catch (IOException)
        {
        }
        var bytes = received.ToArray();
        var end = bytes.AsSpan().IndexOf("\r\n\r\n"u8);
        Assert.IsGreaterThan(0, end, "an HTTP answer: " + Encoding.ASCII.GetString(bytes));
        var lines = Encoding.ASCII.GetString(bytes, 0, end).Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.OrdinalIgnoreCase);
        var body = bytes[(end + 4)..];
        if (headers.TryGetValue("Transfer-Encoding", out var te) && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            body = Dechunk(body);
        }
        return new RawResponse(status, headers, body);
    }

    private static byte[] Dechunk(byte[] chunked)
    {
        var output = new MemoryStream();
        var offset = 0;
        while (true)
        {
            var lineEnd = chunked.AsSpan(offset).IndexOf("\r\n"u8);
            var size = Convert.ToInt32(Encoding.ASCII.GetString(chunked, offset, lineEnd).Split(';')[0], 16);
            offset += lineEnd + 2;
            if (size == 0)
            {
                return output.ToArray();
            }
            output.Write(chunked, offset, size);
            offset += size + 2;
        }
    }
}
