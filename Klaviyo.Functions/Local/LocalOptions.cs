namespace Klaviyo.Functions.Local;

/// <summary>Settings of section <c>Local</c>: local mode only (<c>--local</c>); the Functions host ignores them.</summary>
internal sealed class LocalOptions
{
    public const string SectionName = "Local";

    /// <summary>The SQLite database holding the queue, scheduled retries and dead letters. Default <c>relay.db</c>.</summary>
    public string DatabasePath { get; set; } = "relay.db";

    /// <summary>JSON-lines copy of every dead letter (UTF-8, no byte-order mark). Default <c>dead-letters.jsonl</c>.</summary>
    public string DeadLetterPath { get; set; } = "dead-letters.jsonl";

    /// <summary>Batches relayed at once (each consumer takes one batch at a time, like a Functions instance). Default 2 (1–64):
    /// fewer, fuller batches make fewer bulk calls, and the import-job endpoint (150 a minute) is what binds.</summary>
    public int Concurrency { get; set; } = 2;

    /// <summary>Most events in one batch, like host.json <c>maxMessageBatchSize</c>. Default 1,000 (1–1,000: one
    /// event bulk call carries at most 1,000).</summary>
    public int BatchSize { get; set; } = 1000;

    /// <summary>While events are streaming in (the last batch held 10 or more), with fewer than
    /// <see cref="MinBatchSize"/> ready a consumer waits up to this long for more, like host.json <c>maxBatchWaitTime</c>;
    /// an idle relay relays a lone event at once. Default 1 s (0–5 s).</summary>
    public TimeSpan BatchWait { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>A batch this large is relayed at once, like host.json <c>minMessageBatchSize</c>. Default 1,000.</summary>
    public int MinBatchSize { get; set; } = 1000;

    /// <summary>On Ctrl+C, how long events already being relayed may take to finish. Default 20 s (0–5 min).</summary>
    public TimeSpan ShutdownGrace { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>A re-sent messageId within this window is answered 202 but not queued again. Default 10 min (0–7 days).</summary>
    public TimeSpan DuplicateWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Events waiting at most; beyond it the ingest answers 503 with Retry-After. Default 1,000,000.</summary>
    public long MaxBacklog { get; set; } = 1_000_000;

    /// <summary>Free space the disk holding <see cref="DatabasePath"/> keeps for the relay: below it the ingest answers
    /// 503 with Retry-After and queues nothing, so leasing, settling and dead-lettering (which write too) can still drain
    /// what the queue holds. Default 256 MB (268,435,456); 0 turns the floor off; at most 1 TB.</summary>
    public long MinFreeDiskBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>How long a consumer holds an event (or a batch) before it is handed out again to another consumer of the
    /// same process. Default 2 min, like the Azure queue's lock; at least the relay's bound on one delivery or batch
    /// (<see cref="Settings.RelayOptions.MessageLockDuration"/>), at most 1 h. A restart does not wait it out: the
    /// database has one owner, so leases left by a previous process are released at open.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Function key for the ingest when listening beyond loopback (<c>x-functions-key</c> or <c>?code=</c>).</summary>
    public string? ApiKey { get; set; }

    /// <summary>Key for <c>POST /api/dead-letters/replay</c>; without it the route does not exist.</summary>
    public string? AdminKey { get; set; }
}
