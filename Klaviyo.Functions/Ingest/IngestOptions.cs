using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Ingest;

/// <summary>Settings of section <c>Ingest</c> (app settings <c>Ingest__Name</c>); spec section 7.</summary>
internal sealed class IngestOptions
{
    public const string SectionName = "Ingest";

    public const int MinBytes = 1024;

    /// <summary>The Functions host refuses HTTP bodies over 100 MB anyway.</summary>
    public const int MaxRequestBytesCeiling = 100 * 1024 * 1024;

    /// <summary>A Standard-tier Service Bus message holds at most 256 KB.</summary>
    public const int MaxEventBytesCeiling = 256 * 1024;

    public const long MaxInFlightBodyBytesCeiling = 64L * 1024 * 1024 * 1024;

    /// <summary>The buffer one maximum-size body needs (the pool rounds sizes up to powers of two).</summary>
    public long LargestBodyBuffer => (long)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(MaxRequestBytes, 1));

    /// <summary>When set, every request must carry <c>X-Signature: sha256=&lt;hex HMAC-SHA256 of the raw body&gt;</c>
    /// keyed with this secret's UTF-8 bytes. Default empty (no signature required). Never logged.</summary>
    public string SigningSecret { get; set; } = "";

    /// <summary>How <c>X-Signature</c> is written (spec section 7): <see cref="SignatureSchemeSha256"/> (default,
    /// <c>sha256=&lt;hex HMAC-SHA256 of the raw body&gt;</c>) or <see cref="SignatureSchemeSegmentSha1"/> (Segment's
    /// webhooks: <c>&lt;hex HMAC-SHA1&gt;</c> of the raw body or, for an array, of its first element).</summary>
    public string SignatureScheme { get; set; } = SignatureSchemeSha256;

    public const string SignatureSchemeSha256 = "sha256";
    public const string SignatureSchemeSegmentSha1 = "segment-sha1";

    /// <summary>True when <see cref="SignatureScheme"/> is Segment's.</summary>
    public bool UsesSegmentSignatures => string.Equals(SignatureScheme?.Trim(), SignatureSchemeSegmentSha1, StringComparison.OrdinalIgnoreCase);

    /// <summary>Largest request body in bytes; larger is 413. Default 4 MB (4,194,304); 1,024 to 104,857,600.</summary>
    public int MaxRequestBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest single event in bytes of UTF-8 JSON; larger is 413. Default 32 KB (32,768); 1,024 to 262,144.</summary>
    public int MaxEventBytes { get; set; } = 32 * 1024;

    /// <summary>Largest total of request-body buffers held at once by all requests being read or decided; a request
    /// that would go beyond it is 503 with <c>Retry-After</c>. Buffers grow as bytes arrive (pooled, powers of two), so
    /// a slow upload holds what it sent, not what it declared; while a body is checked, its parse is held here too
    /// (<see cref="ParseBytesPerToken"/> per JSON token, <see cref="ParseBytesPerEvent"/> per event). Default 128 MB (134,217,728): 32 maximum-size bodies.
    /// At least one maximum-size body (<see cref="MaxRequestBytes"/> rounded up to a power of two), at most 64 GB.</summary>
    public long MaxInFlightBodyBytes { get; set; } = 128L * 1024 * 1024;

    /// <summary>What parsing holds per JSON token: a 12-byte row of the parsed document, twice over while its table
    /// doubles.</summary>
    public const int ParseBytesPerToken = 24;

    /// <summary>What checking holds per event beyond its tokens (its element, id, problem or queue entry), rounded up
    /// from about 300 bytes measured.</summary>
    public const int ParseBytesPerEvent = 512;

    /// <summary>The budget one request's parse takes while it is checked.</summary>
    public static long ParseCost(TextScan scan) => scan.Tokens * ParseBytesPerToken + (long)scan.Events * ParseBytesPerEvent;

    /// <summary>A body arriving slower than this (bytes per second, over 2-second windows) is evicted — answered 408 and
    /// its buffer given back — when another request finds <see cref="MaxInFlightBodyBytes"/> full. Default 16,384 (a 4 MB
    /// body in about 4 minutes); 0 turns eviction off; at most 104,857,600.</summary>
    public int MinBodyBytesPerSecond { get; set; } = 16 * 1024;

    /// <summary>Most events in one request; more is 413 before the body is parsed. Default 10,000; 1 to 1,000,000. Bounds
    /// what checking one request costs: a 4 MB array of two million numbers is refused after a pass over 10,001 of them.</summary>
    public int MaxEventsPerRequest { get; set; } = 10_000;

    /// <summary>The longest <see cref="SendTimeout"/> accepted (host.json's <c>functionTimeout</c> leaves room for it).</summary>
    public static readonly TimeSpan MaxSendTimeout = TimeSpan.FromMinutes(3);

    /// <summary>How long a request waits for Service Bus before answering 503. Default 30 s; 1 s to 3 min.</summary>
    public TimeSpan SendTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The <c>Retry-After</c> of a 503. Default 10 s; 1 s to 1 h.</summary>
    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromSeconds(10);

    public bool RequiresSignature => !string.IsNullOrEmpty(SigningSecret);

    /// <summary>The secret is a Key Vault reference the platform has not resolved: no signature can be checked yet.</summary>
    public bool SigningSecretUnresolved => KeyVaultReference.IsUnresolved(SigningSecret);

    public override string ToString() =>
        $"IngestOptions {{ MaxRequestBytes = {MaxRequestBytes}, MaxEventBytes = {MaxEventBytes}, MaxEventsPerRequest = {MaxEventsPerRequest}, MinBodyBytesPerSecond = {MinBodyBytesPerSecond}, MaxInFlightBodyBytes = {MaxInFlightBodyBytes}, SendTimeout = {SendTimeout}, RetryAfter = {RetryAfter}, SignatureScheme = {SignatureScheme}, SigningSecret = {(RequiresSignature ? "***" : "(none)")} }}";
}

/// <summary>Validates <see cref="IngestOptions"/> at start-up; messages name the setting as an operator writes it.</summary>
internal sealed class IngestOptionsValidator : IValidateOptions<IngestOptions>
{
    private const string Prefix = IngestOptions.SectionName + "__";

    public ValidateOptionsResult Validate(string? name, IngestOptions options)
    {
        var failures = new List<string>();
        // An unresolved Key Vault reference is accepted, as for Klaviyo__PrivateApiKey: refusing it would stop the app on a
        // first provision. Health answers 503 naming the setting; the ingest answers 503 with Retry-After (IngestHandler).
        if (!string.IsNullOrEmpty(options.SigningSecret) && string.IsNullOrWhiteSpace(options.SigningSecret))
        {
            failures.Add($"{Prefix}{nameof(IngestOptions.SigningSecret)} must not be blank (leave it unset to accept unsigned requests)");
        }

        if (!string.Equals(options.SignatureScheme?.Trim(), IngestOptions.SignatureSchemeSha256, StringComparison.OrdinalIgnoreCase)
            && !options.UsesSegmentSignatures)
        {
            failures.Add($"{Prefix}{nameof(IngestOptions.SignatureScheme)}: '{options.SignatureScheme}' is not one of {IngestOptions.SignatureSchemeSha256}, {IngestOptions.SignatureSchemeSegmentSha1}");
        }

        SettingRules.Range(failures, IngestOptions.SectionName, nameof(IngestOptions.MaxRequestBytes), options.MaxRequestBytes, IngestOptions.MinBytes, IngestOptions.MaxRequestBytesCeiling);
        SettingRules.Range(failures, IngestOptions.SectionName, nameof(IngestOptions.MaxEventBytes), options.MaxEventBytes, IngestOptions.MinBytes, IngestOptions.MaxEventBytesCeiling);
        if (options.MaxEventBytes > options.MaxRequestBytes)
        {
            failures.Add($"{Prefix}{nameof(IngestOptions.MaxEventBytes)} ({options.MaxEventBytes}) must not exceed {Prefix}{nameof(IngestOptions.MaxRequestBytes)} ({options.MaxRequestBytes})");
        }

        if (options.MaxInFlightBodyBytes < options.LargestBodyBuffer || options.MaxInFlightBodyBytes > IngestOptions.MaxInFlightBodyBytesCeiling)
        {
            failures.Add($"{Prefix}{nameof(IngestOptions.MaxInFlightBodyBytes)} must be between {options.LargestBodyBuffer} (one body of {Prefix}{nameof(IngestOptions.MaxRequestBytes)}, rounded up to a power of two) and {IngestOptions.MaxInFlightBodyBytesCeiling}, not {options.MaxInFlightBodyBytes}");
        }

        SettingRules.Range(failures, IngestOptions.SectionName, nameof(IngestOptions.MinBodyBytesPerSecond), options.MinBodyBytesPerSecond, 0, IngestOptions.MaxRequestBytesCeiling);
        SettingRules.Range(failures, IngestOptions.SectionName, nameof(IngestOptions.MaxEventsPerRequest), options.MaxEventsPerRequest, 1, 1_000_000);
        SettingRules.Range(failures, IngestOptions.SectionName, nameof(IngestOptions.SendTimeout), options.SendTimeout, TimeSpan.FromSeconds(1), IngestOptions.MaxSendTimeout);
        SettingRules.Range(failures, IngestOptions.SectionName, nameof(IngestOptions.RetryAfter), options.RetryAfter, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
