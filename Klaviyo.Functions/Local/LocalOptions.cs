namespace Klaviyo.Functions.Local;

/// <summary>Settings of section <c>Local</c>: local mode only (<c>--local</c>); the Functions host ignores them.</summary>
public sealed class LocalOptions
{
    public const string SectionName = "Local";

    /// <summary>JSON-lines file for dead letters (and events still queued at shutdown). Default <c>dead-letters.jsonl</c>.</summary>
    public string DeadLetterPath { get; set; } = "dead-letters.jsonl";

    /// <summary>Events relayed at once, like host.json <c>maxConcurrentCalls</c>. Default 16 (1–256).</summary>
    public int Concurrency { get; set; } = 16;

    /// <summary>On Ctrl+C, how long events already being relayed may take to finish. Default 20 s (0–5 min).</summary>
    public TimeSpan ShutdownGrace { get; set; } = TimeSpan.FromSeconds(20);
}
