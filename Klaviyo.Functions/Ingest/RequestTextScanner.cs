using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Klaviyo.Functions.Ingest;

/// <summary>What the text scan of one body found.</summary>
/// <param name="Problems">Text the sender must fix: bytes that are not UTF-8, numbers outside the range of a double,
/// control characters in a <c>messageId</c>. Empty when the body's text is sound (or is not JSON at all: that is the
/// validator's to say).</param>
/// <param name="LoneSurrogatesReplaced">Lone UTF-16 surrogate escapes rewritten to <c>\uFFFD</c> in place.</param>
/// <param name="Events">Events in the body (elements of the events array, or 1 for a single object); when
/// <paramref name="TooManyEvents"/>, the scan stopped at the first event beyond the limit.</param>
/// <param name="Tokens">JSON tokens read (values, property names and the ends of objects and arrays): what a parse
/// of the body stores, one row each.</param>
internal sealed record TextScan(ProblemList Problems, int LoneSurrogatesReplaced, int Events = 0, long Tokens = 0, bool TooManyEvents = false);

/// <summary>
/// One streaming pass over the raw body before validation (spec section 7, "Text"). A lone surrogate escape
/// (<c>"\ud83d"</c>, a JavaScript string cut mid-emoji) is valid JSON that .NET cannot turn into a string: it is
/// rewritten in place to <c>\uFFFD</c> (the same six bytes) so the event goes through with U+FFFD — except in a
/// <c>messageId</c>, where it is refused: replaced, distinct ids would become one and be deduplicated away. Raw bytes that
/// are not UTF-8 would be silently replaced further on, so they are refused, naming the event and the field, as are
/// numbers a double cannot hold (<c>1e400</c>) and control characters in a <c>messageId</c> (it reaches log lines).
/// </summary>
internal static class RequestTextScanner
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };

    /// <summary>Scans <paramref name="body"/>, replacing lone surrogate escapes in it; stops at the first event beyond
    /// <paramref name="maxEvents"/>, so a body of two million elements costs a pass over a few bytes of each.</summary>
    public static TextScan Scan(Span<byte> body, int maxEvents = int.MaxValue)
    {
        if (body.StartsWith("\uFEFF"u8))
        {
            body = body[3..];
        }
        var problems = new ProblemList();
        var replaced = 0;
        var scanner = new Scanner(body, problems, maxEvents);
        try
        {
            scanner.Run(ref replaced);
        }
        catch (JsonException)
        {
            // Malformed or too deep: the validator parses the same bytes and names the syntax error.
        }
        return new TextScan(problems, replaced, scanner.Events, scanner.Tokens, scanner.TooManyEvents);
    }

    /// <summary>True when <paramref name="value"/> holds a control character (Unicode category Cc).</summary>
    public static bool HasControlCharacter(string value, out int position)
    {
        for (position = 0; position < value.Length; position++)
        {
            if (char.IsControl(value[position]))
            {
                return true;
            }
        }
        return false;
    }

    private struct Frame
    {
        public bool IsArray;
        public int Index;
        public int NameStart;
        public int NameLength;
        public bool NameEscaped;
        public bool IsEventContainer;
    }

    private ref struct Scanner(Span<byte> body, ProblemList problems, int maxEvents)
    {
        private readonly Span<byte> _body = body;

        public int Events { get; private set; }

        public long Tokens { get; private set; }

        public bool TooManyEvents { get; private set; }

        private readonly List<Frame> _frames = [];
        private bool _batchMode;
        private int _eventProblemsStart;
        private string? _eventMessageId;
        private bool _expectMessageId;

        public void Run(ref int replaced)
        {
            _batchMode = IsBatchEnvelope(_body);
            var reader = new Utf8JsonReader(_body, ReaderOptions);
            while (reader.Read())
            {
                Tokens++;
                var token = reader.TokenType;
                if (token is JsonTokenType.EndObject or JsonTokenType.EndArray)
                {
                    var closing = _frames.Count - 1;
                    if (EventFrameDepth() == closing)
                    {
                        EndEvent();
                    }
                    _frames.RemoveAt(closing);
                    continue;
                }
                if (token == JsonTokenType.PropertyName)
                {
                    var top = _frames[^1];
                    top.NameStart = OffsetOf(reader.ValueSpan);
                    top.NameLength = reader.ValueSpan.Length;
                    top.NameEscaped = reader.ValueIsEscaped;
                    _frames[^1] = top;
                    replaced += CheckString(ref reader);
                    _expectMessageId = _frames.Count - 1 == EventFrameDepth() && reader.ValueTextEquals("messageId"u8);
                    continue;
                }

                // A value: advance the index of the array it sits in.
                if (_frames.Count > 0 && _frames[^1].IsArray)
                {
                    var top = _frames[^1];
                    top.Index++;
                    _frames[^1] = top;
                    if (top.IsEventContainer)
                    {
                        if (++Events > maxEvents)
                        {
                            TooManyEvents = true;
                            return;
                        }
                        _eventProblemsStart = problems.Listed.Count;
                        _eventMessageId = null;
                    }
                }
                var isMessageId = _expectMessageId;
                _expectMessageId = false;

                switch (token)
                {
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        var container = token == JsonTokenType.StartArray
                            && ((_frames.Count == 0 && !_batchMode) || (_batchMode && _frames.Count == 1 && NameIs(_frames[0], "batch"u8)));
                        _frames.Add(new Frame { IsArray = token == JsonTokenType.StartArray, Index = -1, NameStart = -1, IsEventContainer = container });
                        if (_frames.Count == 1 && !container)
                        {
                            Events = _batchMode ? Events : 1;
                            _eventProblemsStart = 0;
                            _eventMessageId = null;
                        }
                        break;
                    case JsonTokenType.String:
                        if (isMessageId && reader.ValueIsEscaped && FirstLoneSurrogate(reader.ValueSpan) is var lone and >= 0)
                        {
                            // Replaced, it would become another sender's id ("order-\ud800" and "order-\ud801" both
                            // "order-\uFFFD") and duplicate detection would drop all but one.
                            Report($"messageId must not contain a lone UTF-16 surrogate (\\u{lone:x4} is half of a pair): replacing it would merge distinct ids; send the whole character or another id", "messageId");
                            break;
                        }
                        replaced += CheckString(ref reader);
                        if (isMessageId && Utf8.IsValid(reader.ValueSpan))
                        {
                            CheckMessageId(reader.GetString()!);
                        }
                        break;
                    case JsonTokenType.Number:
                        // TryGetDouble gives +-Infinity for 1e400; a double must be finite to be sent on.
                        if (!reader.TryGetDouble(out var number) || !double.IsFinite(number))
                        {
                            var text = Encoding.ASCII.GetString(reader.ValueSpan.Length > 40 ? reader.ValueSpan[..40] : reader.ValueSpan);
                            Report($"{FieldName()} is the number {text}{(reader.ValueSpan.Length > 40 ? "…" : "")}, outside the range of a double (±1.7976931348623157E+308)");
                        }
                        else if (isMessageId)
                        {
                            _eventMessageId ??= Encoding.ASCII.GetString(reader.ValueSpan);
                        }
                        break;
                }
            }
        }

        /// <summary>Checks one string token (a value or a property name); returns the lone surrogates it replaced.</summary>
        private int CheckString(ref Utf8JsonReader reader)
        {
            var raw = reader.ValueSpan;
            var invalidAt = FirstInvalidUtf8(raw);
            if (invalidAt >= 0)
            {
                var what = reader.TokenType == JsonTokenType.PropertyName ? "the property name " + FieldName() : FieldName();
                Report($"{what} holds bytes that are not UTF-8 (0x{raw[invalidAt]:X2} at byte {OffsetOf(raw) + invalidAt}): send the body encoded as UTF-8");
                return 0;
            }
            return reader.ValueIsEscaped ? ReplaceLoneSurrogates(MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(raw), raw.Length)) : 0;
        }

        private void CheckMessageId(string id)
        {
            if (HasControlCharacter(id, out var position))
            {
                Report($"messageId must not contain control characters (U+{(int)id[position]:X4} at position {position})", "messageId");
                return;
            }
            _eventMessageId = id;
        }

        private void EndEvent()
        {
            if (_eventMessageId is { } id && problems.Listed.Count > _eventProblemsStart)
            {
                problems.SetMessageId(_eventProblemsStart, id);
            }
            _eventMessageId = null;
            _eventProblemsStart = problems.Listed.Count;
        }

        private void Report(string message, string? field = null)
        {
            var (index, path) = Locate();
            problems.Add(new ProblemError(index, null, field ?? path, message));
        }

        private string FieldName()
        {
            var (index, path) = Locate();
            return path.Length > 0 ? path : index is null ? "the body" : "the event";
        }

        /// <summary>The stack depth of the current event's own frame: the root object when it is the event, else the
        /// element of the events array; -1 outside any event.</summary>
        private int EventFrameDepth()
        {
            for (var i = 0; i < _frames.Count; i++)
            {
                if (_frames[i].IsEventContainer)
                {
                    return i + 1;
                }
            }
            return _frames.Count > 0 && !_frames[0].IsArray && !_batchMode ? 0 : -1;
        }

        /// <summary>The event index and the field's JSON path within the event (absolute when outside any event).</summary>
        private (int? Index, string Path) Locate()
        {
            int? index = null;
            var from = 0;
            for (var i = 0; i < _frames.Count; i++)
            {
                if (_frames[i].IsEventContainer)
                {
                    index = _frames[i].Index;
                    from = i + 1;
                    break;
                }
            }
            if (index is null && _frames.Count > 0 && !_frames[0].IsArray && !_batchMode)
            {
                index = 0;
            }
            var path = new StringBuilder();
            for (var i = from; i < _frames.Count; i++)
            {
                var frame = _frames[i];
                if (frame.IsArray)
                {
                    if (frame.Index >= 0)
                    {
                        path.Append('[').Append(frame.Index.ToString(CultureInfo.InvariantCulture)).Append(']');
                    }
                }
                else if (frame.NameStart >= 0)
                {
                    if (path.Length > 0)
                    {
                        path.Append('.');
                    }
                    path.Append(DecodeName(frame));
                }
            }
            return (index, path.ToString());
        }

        private string DecodeName(Frame frame)
        {
            var raw = _body.Slice(frame.NameStart, frame.NameLength);
            if (frame.NameEscaped && Utf8.IsValid(raw))
            {
                var quoted = new byte[raw.Length + 2];
                quoted[0] = quoted[^1] = (byte)'"';
                raw.CopyTo(quoted.AsSpan(1));
                var nameReader = new Utf8JsonReader(quoted);
                if (nameReader.Read())
                {
                    try
                    {
                        return nameReader.GetString()!;
                    }
                    catch (InvalidOperationException)
                    {
                    }
                }
            }
            // Lossy on purpose: a name that is not UTF-8 is named with U+FFFD where its bad bytes are.
            return Encoding.UTF8.GetString(raw);
        }

        private bool NameIs(Frame frame, ReadOnlySpan<byte> name) =>
            frame.NameStart >= 0 && !frame.NameEscaped && _body.Slice(frame.NameStart, frame.NameLength).SequenceEqual(name);

        private int OffsetOf(ReadOnlySpan<byte> slice) =>
            (int)Unsafe.ByteOffset(ref MemoryMarshal.GetReference(_body), ref MemoryMarshal.GetReference(slice));
    }

    /// <summary>Whether the root is <c>{"batch": [...]}</c> without a <c>type</c> (then the batch's elements are the
    /// events), decided as the validator decides it.</summary>
    private static bool IsBatchEnvelope(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body, ReaderOptions);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return false;
        }
        bool batch = false, type = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            batch |= reader.ValueTextEquals("batch"u8);
            type |= reader.ValueTextEquals("type"u8);
            reader.Read();
            reader.Skip();
        }
        return batch && !type;
    }

    /// <summary>The offset of the first byte that does not start or continue a valid UTF-8 sequence; -1 when valid.</summary>
    private static int FirstInvalidUtf8(ReadOnlySpan<byte> raw)
    {
        if (Utf8.IsValid(raw))
        {
            return -1;
        }
        var offset = 0;
        while (offset < raw.Length)
        {
            var status = System.Text.Rune.DecodeFromUtf8(raw[offset..], out _, out var consumed);
            if (status != System.Buffers.OperationStatus.Done)
            {
                return offset;
            }
            offset += consumed;
        }
        return -1;
    }

    /// <summary>Rewrites each <c>\uD800</c>–<c>\uDFFF</c> escape that is not half of a pair to <c>\uFFFD</c>.</summary>
    internal static int ReplaceLoneSurrogates(Span<byte> escaped) => VisitLoneSurrogates(escaped, replace: true, out _);

    /// <summary>The first lone surrogate escaped in <paramref name="escaped"/> (its UTF-16 unit), or -1; nothing changed.</summary>
    private static int FirstLoneSurrogate(ReadOnlySpan<byte> escaped)
    {
        var span = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(escaped), escaped.Length);
        return VisitLoneSurrogates(span, replace: false, out var first) > 0 ? first : -1;
    }

    private static int VisitLoneSurrogates(Span<byte> escaped, bool replace, out int first)
    {
        first = -1;
        var replaced = 0;
        var i = 0;
        while (i < escaped.Length)
        {
            if (escaped[i] != (byte)'\\')
            {
                i++;
                continue;
            }
            if (i + 1 >= escaped.Length || escaped[i + 1] != (byte)'u')
            {
                i += 2;
                continue;
            }
            var unit = Hex(escaped.Slice(i + 2, 4));
            if (char.IsHighSurrogate((char)unit) && i + 11 < escaped.Length && escaped[i + 6] == (byte)'\\' && escaped[i + 7] == (byte)'u'
                && char.IsLowSurrogate((char)Hex(escaped.Slice(i + 8, 4))))
            {
                i += 12;
                continue;
            }
            if (char.IsSurrogate((char)unit))
            {
                if (!replace)
                {
                    first = unit;
                    return 1;
                }
                "FFFD"u8.CopyTo(escaped.Slice(i + 2, 4));
                replaced++;
            }
            i += 6;
        }
        return replaced;
    }

    /// <summary>Four hex digits (the reader has already checked they are).</summary>
    private static int Hex(ReadOnlySpan<byte> digits)
    {
        var value = 0;
        foreach (var digit in digits)
        {
            value = (value << 4) | (digit <= '9' ? digit - '0' : (digit | 0x20) - 'a' + 10);
        }
        return value;
    }
}
