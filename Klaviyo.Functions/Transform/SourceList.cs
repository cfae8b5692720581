using System.Text;
using System.Text.Json;

namespace Klaviyo.Functions.Transform;

/// <summary>Where in an event a source key is looked up.</summary>
internal enum Scope : byte
{
    /// <summary>The event itself (<c>userId</c>, <c>timestamp</c>).</summary>
    Root,
    Traits,
    ContextTraits,
    Properties,
    Context,
    Location,

    /// <summary>Spec 4.2's trait object: for identify <c>traits</c> over <c>context.traits</c>, for the others <c>context.traits</c>.</summary>
    TraitObject,

    /// <summary>The trait object's <c>address</c> object.</summary>
    TraitAddress,

    /// <summary>The trait object's <c>company</c> object.</summary>
    TraitCompany,

    /// <summary>identify's control object: <c>traits.properties</c> over <c>context.traits.properties</c>.</summary>
    Control,

    /// <summary>Segment's <c>integrations.Klaviyo</c> object (absent when it is not an object: Segment also sends
    /// <c>"Klaviyo": true</c>).</summary>
    KlaviyoIntegration,
}

/// <summary>One source of a rule: a key in a <see cref="Scope"/>, with the field names an error reports.</summary>
internal sealed class Source
{
    private static readonly (string Prefix, Scope Scope)[] s_prefixes =
    [
        ("traitObject.address.", Scope.TraitAddress),
        ("traitObject.company.", Scope.TraitCompany),
        ("traitObject.", Scope.TraitObject),
        ("control.", Scope.Control),
        ("integrations.Klaviyo.", Scope.KlaviyoIntegration),
        ("context.traits.", Scope.ContextTraits),
        ("context.location.", Scope.Location),
        ("context.", Scope.Context),
        ("traits.", Scope.Traits),
        ("properties.", Scope.Properties),
    ];

    public Source(string path)
    {
        Path = path;
        var prefix = "";
        Scope = Scope.Root;
        foreach (var (candidate, scope) in s_prefixes)
        {
            if (path.StartsWith(candidate, StringComparison.Ordinal))
            {
                (prefix, Scope) = (candidate, scope);
                break;
            }
        }
        Key = path[prefix.Length..];
        if (Key.Length == 0 || Key.Contains('.', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{path}' is not a source path (scope prefix and one key)", nameof(path));
        }
        Utf8Key = Encoding.UTF8.GetBytes(Key);
        (UpperField, LowerField) = Scope switch
        {
            Scope.Root => (Key, Key),
            Scope.Traits => ("traits." + Key, "traits." + Key),
            Scope.ContextTraits => ("context.traits." + Key, "context.traits." + Key),
            Scope.Properties => ("properties." + Key, "properties." + Key),
            Scope.Context => ("context." + Key, "context." + Key),
            Scope.Location => ("context.location." + Key, "context.location." + Key),
            Scope.TraitObject => ("traits." + Key, "context.traits." + Key),
            Scope.TraitAddress => ("traits.address." + Key, "context.traits.address." + Key),
            Scope.TraitCompany => ("traits.company." + Key, "context.traits.company." + Key),
            Scope.KlaviyoIntegration => ("integrations.Klaviyo." + Key, "integrations.Klaviyo." + Key),
            _ => ("traits.properties." + Key, "context.traits.properties." + Key),
        };
    }

    /// <summary>As written in the table (<c>traits.email</c>, <c>traitObject.firstName</c>).</summary>
    public string Path { get; }

    public Scope Scope { get; }

    public string Key { get; }

    public byte[] Utf8Key { get; }

    /// <summary>The field named when the value came from the upper layer (<c>traits</c> of identify, else the only one).</summary>
    public string UpperField { get; }

    /// <summary>The field named when the value came from the lower layer (<c>context.traits</c>).</summary>
    public string LowerField { get; }

    public override string ToString() => Path;
}

/// <summary>
/// A "first present wins" rule of spec 4.1 / 4.2 / 5 as data: its sources in order. <see cref="In"/> enumerates the
/// present values (not missing, not <c>null</c>) in that order with the field each came from; a mapping takes the
/// first, or the first it accepts (for example the first non-empty string).
/// </summary>
internal sealed class SourceList
{
    public SourceList(params string[] paths)
    {
        Sources = Array.ConvertAll(paths, p => new Source(p));
    }

    public Source[] Sources { get; }

    public Candidates In(EventView view) => new(Sources, view);

    /// <summary>The first present value, or <c>default</c> (Undefined).</summary>
    public JsonElement First(EventView view, out string field)
    {
        foreach (var candidate in In(view))
        {
            field = candidate.Field;
            return candidate.Value;
        }
        field = Sources[0].UpperField;
        return default;
    }

    public JsonElement First(EventView view) => First(view, out _);

    /// <summary>The sources for a message: <c>name, properties.name or event</c>.</summary>
    public string Describe() => Sources.Length == 1
        ? Sources[0].Path
        : string.Join(", ", Sources[..^1].Select(s => s.Path)) + " or " + Sources[^1].Path;

    public override string ToString() => string.Join(" ?? ", Sources.Select(s => s.Path));
}

/// <summary>A present value and where it was found.</summary>
internal readonly record struct Candidate(JsonElement Value, string Field, Source Source);

/// <summary>The present values of a <see cref="SourceList"/> in order; allocation-free.</summary>
internal ref struct Candidates
{
    private readonly Source[] _sources;
    private readonly EventView _view;
    private int _index;
    private bool _lowerNext;
    private Candidate _current;

    public Candidates(Source[] sources, EventView view)
    {
        _sources = sources;
        _view = view;
        _index = -1;
        _lowerNext = false;
        _current = default;
    }

    public readonly Candidates GetEnumerator() => this;

    public readonly Candidate Current => _current;

    public bool MoveNext()
    {
        while (true)
        {
            if (_lowerNext)
            {
                // The second layer of the current source (the trait object's context.traits, the control object's lower half).
                _lowerNext = false;
                var source = _sources[_index];
                var lower = source.Scope == Scope.Control ? _view.ContextControlProperties : _view.TraitSecondary;
                var value = JsonRead.Get(lower, source.Utf8Key);
                if (value.ValueKind != JsonValueKind.Undefined)
                {
                    _current = new Candidate(value, source.LowerField, source);
                    return true;
                }
                continue;
            }
            if (++_index >= _sources.Length)
            {
                return false;
            }
            var next = _sources[_index];
            var (parent, upper) = next.Scope switch
            {
                Scope.Root => (_view.Root, true),
                Scope.Traits => (_view.Traits, true),
                Scope.ContextTraits => (_view.ContextTraits, true),
                Scope.Properties => (_view.Properties, true),
                Scope.Context => (_view.Context, true),
                Scope.Location => (_view.Location, true),
                Scope.TraitObject => (_view.TraitPrimary, _view.TraitPrimaryIsTraits),
                Scope.TraitAddress => (_view.TraitObjectChild(isAddress: true, out var fromTraits), fromTraits),
                Scope.TraitCompany => (_view.TraitObjectChild(isAddress: false, out var fromTraits), fromTraits),
                Scope.KlaviyoIntegration => (JsonRead.Get(JsonRead.Get(_view.Root, "integrations"u8), "Klaviyo"u8), true),
                _ => (_view.ControlProperties, true),
            };
            _lowerNext = next.Scope is Scope.TraitObject or Scope.Control;
            var found = JsonRead.Get(parent, next.Utf8Key);
            if (found.ValueKind != JsonValueKind.Undefined)
            {
                _current = new Candidate(found, upper ? next.UpperField : next.LowerField, next);
                return true;
            }
        }
    }
}
