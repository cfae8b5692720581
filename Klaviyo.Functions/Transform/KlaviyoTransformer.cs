using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using Klaviyo.Functions.Events;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// Turns one RudderStack/Segment event into the parts of its Klaviyo calls (spec sections 4–5). Pure: no I/O, thread-safe.
/// </summary>
internal sealed class KlaviyoTransformer
{
    public const string AliasSkipReason = "alias events are not sent: Klaviyo has no alias call";

    public const string GroupSkipReason = "group events are not sent under Klaviyo__GroupMode=skip (the groupId is an account, not a Klaviyo list)";

    /// <summary>The field the ingest stamps with the time it received the event (spec section 7).</summary>
    public const string ReceivedAtField = "receivedAt";

    /// <summary>The field that carries the event's id; the ingest keeps a valid one or writes a new one.</summary>
    public const string MessageIdField = "messageId";

    private static readonly JsonDocumentOptions s_documentOptions = new() { MaxDepth = 64 };

    public KlaviyoTransformer(IOptions<KlaviyoOptions> options, IOptions<RelayOptions> relayOptions, TimeProvider timeProvider)
        : this(options.Value, timeProvider, null, relayOptions.Value.MaxItemsPerOrder)
    {
    }

    /// <param name="maxItemsPerOrder"><c>Relay__MaxItemsPerOrder</c>.</param>
    public KlaviyoTransformer(KlaviyoOptions options, TimeProvider? timeProvider = null, int maxItemsPerOrder = RelayOptions.DefaultMaxItemsPerOrder)
        : this(options, timeProvider, null, maxItemsPerOrder)
    {
    }

    /// <param name="tables">The mapping rules; the standard ones (<see cref="MappingTables.Default"/>) when null.</param>
    internal KlaviyoTransformer(KlaviyoOptions options, TimeProvider? timeProvider, MappingTables? tables, int maxItemsPerOrder = RelayOptions.DefaultMaxItemsPerOrder)
    {
        Options = options;
        TimeProvider = timeProvider ?? TimeProvider.System;
        MaxItemsPerOrder = maxItemsPerOrder;
        _mappings = tables is null || ReferenceEquals(tables, MappingTables.Default) ? Mappings.Default : new Mappings(tables);
    }

    private readonly Mappings _mappings;

    public KlaviyoOptions Options { get; }

    /// <summary>Most items of one order under <c>Klaviyo__OrderCompleted=placedOrder</c> (<c>Relay__MaxItemsPerOrder</c>).</summary>
    public int MaxItemsPerOrder { get; }

    public TimeProvider TimeProvider { get; }

    /// <summary>
    /// Transforms a UTF-8 JSON event. Never throws for bad input: malformed JSON is <see cref="TransformResult.Malformed"/>,
    /// a permanent error <see cref="TransformResult.Invalid"/>. An exception is a bug.
    /// </summary>
    public TransformResult Transform(ReadOnlySpan<byte> utf8Json)
    {
        if (utf8Json.IsEmpty)
        {
            return new TransformResult.Malformed("the body is empty, not a JSON event");
        }
        // The parser checks structure, not the bytes inside strings; checking up front keeps bad text out of bodies.
        if (!System.Text.Unicode.Utf8.IsValid(utf8Json))
        {
            return new TransformResult.Malformed("the body is not valid UTF-8");
        }
        // The document reads from a pooled copy; plans never keep references into it.
        var buffer = ArrayPool<byte>.Shared.Rent(utf8Json.Length);
        try
        {
            utf8Json.CopyTo(buffer);
            LoneSurrogates.Replace(buffer.AsSpan(0, utf8Json.Length));
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(buffer.AsMemory(0, utf8Json.Length), s_documentOptions);
            }
            catch (JsonException ex)
            {
                return new TransformResult.Malformed($"the body is not valid JSON: {ex.Message}");
            }
            using (document)
            {
                return Transform(document.RootElement, utf8Json.Length);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The permanent error an event as the ingest will queue it would be dead-lettered for (spec sections 4–5 under
    /// the current settings), or null when it can be delivered or is deliberately skipped. Runs every check of
    /// <see cref="Transform(JsonElement)"/> through the same mapping code without building a request body.
    /// </summary>
    /// <param name="event">The event as sent, before the ingest stamps it.</param>
    /// <param name="type">The type the ingest settled on (from the event or the route).</param>
    public TransformResult? CheckBeforeIngest(JsonElement @event, EventType type)
    {
        var result = RunParsed(@event, TransformMode.CheckBeforeIngestStamp, type);
        return result is TransformResult.Invalid or TransformResult.Malformed ? result : null;
    }

    /// <summary>
    /// The per-profile ordering key of an ordered event (spec 10): its <c>userId</c>, else <c>anonymousId</c>, else its
    /// lower-cased email, else its E.164 phone, read through the identity sources of spec 4.1; null for a type that is
    /// never held (track, screen, page, alias) and for an event without any of them. Called by the ingest on an event
    /// <see cref="CheckBeforeIngest"/> accepted.
    /// </summary>
    public string? OrderingKeyOf(JsonElement @event, EventType type)
    {
        if (!OrderedTypes.IsOrdered(type))
        {
            return null;
        }
        var raw = JsonMarshal.GetRawUtf8Value(@event);
        if (!LoneSurrogates.Any(raw))
        {
            return KeyOf(@event, type);
        }
        var copy = raw.ToArray();
        LoneSurrogates.Replace(copy);
        using var document = JsonDocument.Parse(copy, s_documentOptions);
        return KeyOf(document.RootElement, type);
    }

    // Identity's sources without EnforceEmailAsPrimary: the key names the person whatever Klaviyo is sent.
    private static readonly KlaviyoOptions s_keyOptions = new();

    private string? KeyOf(JsonElement root, EventType type)
    {
        try
        {
            if (EventView.Create(root, type, _mappings, TransformMode.Check, out var view) is not null
                || Identity.Resolve(view!, s_keyOptions, out var identity) is not null)
            {
                return null;
            }
            return identity.UserId.IsPresent ? identity.UserId.ToString()
                : identity.AnonymousId.IsPresent ? identity.AnonymousId.ToString()
                : identity.Email.IsPresent ? identity.Email.ToString()!.ToLowerInvariant()
                : identity.Phone.ToString();
        }
        finally
        {
            EventView.Release();
        }
    }

    /// <summary>Every check of <see cref="Transform(JsonElement)"/>, no request built: a deliverable event is
    /// <see cref="TransformResult.Planned.Checked"/>.</summary>
    internal TransformResult Check(JsonElement @event) => RunParsed(@event, TransformMode.Check, null);

    // An element parsed elsewhere may hold lone surrogate escapes (which System.Text.Json will not read as text): those
    // are read from a copy with U+FFFD in their place, as the bytes path reads them.
    private TransformResult RunParsed(JsonElement @event, TransformMode mode, EventType? type)
    {
        var raw = JsonMarshal.GetRawUtf8Value(@event);
        if (!LoneSurrogates.Any(raw))
        {
            return Run(@event, raw.Length, mode, type);
        }
        var copy = raw.ToArray();
        LoneSurrogates.Replace(copy);
        using var document = JsonDocument.Parse(copy, s_documentOptions);
        return Run(document.RootElement, copy.Length, mode, type);
    }

    /// <summary>Transforms an already parsed event.</summary>
    public TransformResult Transform(JsonElement @event)
    {
        try
        {
            if (@event.ValueKind == JsonValueKind.Undefined)
            {
                return Transform(@event, 0);
            }
            _ = JsonMarshal.GetRawUtf8Value(@event);
        }
        catch (ObjectDisposedException)
        {
            return new TransformResult.Malformed("the event's JSON document was disposed");
        }
        return RunParsed(@event, TransformMode.Build, null);
    }

    // Bad input is a result; an exception is a bug in this code and is left to surface as one (spec section 6): the
    // ingest answers 500 and the relay retries, then dead-letters ProcessingFailed. It is never blamed on the sender.
    private TransformResult Transform(JsonElement @event, int size) => Run(@event, size, TransformMode.Build, null);

    private TransformResult Run(JsonElement @event, int size, TransformMode mode, EventType? knownType)
    {
        try
        {
            return TransformCore(@event, size, mode, knownType);
        }
        finally
        {
            EventView.Release();
        }
    }

    private TransformResult TransformCore(JsonElement root, int size, TransformMode mode, EventType? knownType)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return new TransformResult.Malformed($"the event is a JSON {Describe(root.ValueKind)}, not an object");
        }
        if (knownType is { } settled)
        {
            return Map(root, size, settled, mode);
        }

        var typeElement = JsonRead.Get(root, "type"u8);
        if (!typeElement.IsPresent())
        {
            return new TransformResult.Invalid("type", "is required");
        }
        if (typeElement.ValueKind != JsonValueKind.String)
        {
            return new TransformResult.Invalid("type", "must be a string");
        }
        if (!EventTypes.TryParse(typeElement, out var type))
        {
            return new TransformResult.Invalid("type", $"'{Truncate(typeElement.GetString()!)}' is not one of {EventTypes.NameList}");
        }

        return Map(root, size, type, mode);
    }

    private TransformResult Map(JsonElement root, int size, EventType type, TransformMode mode)
    {
        if (type == EventType.Alias)
        {
            return new TransformResult.Skipped(AliasSkipReason);
        }
        if (type == EventType.Group && Options.GroupModeIs(KlaviyoOptions.GroupModeSkip))
        {
            return new TransformResult.Skipped(GroupSkipReason);
        }
        if (type == EventType.Page && !Options.SendPageAsTrack)
        {
            return new TransformResult.Skipped(PageMapping.SkipReason);
        }

        if (TransformLimits.CheckStrings(root, size) is { } sizeError)
        {
            return sizeError;
        }
        if (EventView.Create(root, type, _mappings, mode, out var view) is { } shapeError)
        {
            return shapeError;
        }
        if (type == EventType.Delete)
        {
            return DeleteMapping.Map(root, view!, mode);
        }
        if (Identity.Resolve(view!, Options, out var identity) is { } identityError)
        {
            return identityError;
        }
        view!.Identity = identity;

        return type switch
        {
            EventType.Identify => IdentifyMapping.Map(view, Options, TimeProvider.GetUtcNow()),
            EventType.Track => TrackMapping.Map(view, Options, TimeProvider.GetUtcNow(), MaxItemsPerOrder),
            EventType.Screen => ScreenMapping.Map(view, Options, TimeProvider.GetUtcNow()),
            EventType.Page => PageMapping.Map(view, Options, TimeProvider.GetUtcNow()),
            EventType.Group => GroupMapping.Map(view, Options, TimeProvider.GetUtcNow()),
            _ => new TransformResult.Invalid("type", "is not supported"),
        };
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => "value",
    };

    private static string Truncate(string value) => value.Length <= 40 ? value : string.Concat(value.AsSpan(0, 40), "…");
}
