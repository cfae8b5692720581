using System.Security.Cryptography;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Microsoft.Data.Sqlite;

namespace Klaviyo.Functions.Local;

/// <summary>An event handed to a local consumer under a lease: settled with the same token, or handed out again
/// once the lease lapses.</summary>
/// <param name="Sequence">The row id (the dead letter's sequence number for a replay).</param>
/// <param name="LeaseToken">Settlement applies only while this lease holds the row.</param>
/// <param name="MessageId">The queue's id: the event's messageId, or that of a retry or replay copy.</param>
/// <param name="OrderingKey">The per-profile ordering key of an ordered event (spec 10); null for the others.</param>
internal sealed record LeasedEvent(long Sequence, long LeaseToken, string MessageId, string EventMessageId, string Subject, ReadOnlyMemory<byte> Body, int Attempt, string? OrderingKey = null)
{
    /// <summary>When the relay first held it back for a fuller call (kept leased for the next batch); null when it never did.</summary>
    public DateTimeOffset? WaitingSince { get; init; }
}

/// <summary>Per-profile ordering in the local queue (spec 10): on or off, the valve's threshold and length, and who hears
/// when a key's valve opens (a warning and a metric; the key itself is never logged, only its hash).</summary>
internal sealed record LocalOrdering(bool Enabled, int MaxHeldPerKey, TimeSpan ValveOpenFor, Action<string, long>? ValveOpened = null)
{
    public static readonly LocalOrdering Off = new(false, int.MaxValue, TimeSpan.Zero);
}

/// <summary>The backlog as <c>/api/health</c> reports it.</summary>
internal sealed record BacklogCounts(long Ready, long Scheduled, long Leased, long Deferred, long DeadLettered)
{
    /// <summary>Events waiting in any form (what <c>Local:MaxBacklog</c> bounds).</summary>
    public long Waiting => Ready + Scheduled + Leased + Deferred;
}

/// <summary>
/// Local mode's durable queue (spec section 9): one SQLite database in WAL mode with full sync, so a committed event
/// survives <c>kill -9</c> and a power cut. Rows are leased rather than removed; completion, a retry (the same row,
/// due later, attempt + 1, under the retry copy's id) and a dead letter are each one commit. Duplicate detection keys
/// on the ingest's messageId over <c>Local:DuplicateWindow</c>; at most <c>Local:MaxBacklog</c> events wait.
/// Writes are group-committed: one writer applies every pending request, lease and settlement in one transaction (each
/// in its own savepoint, so one refused request does not undo the others) and completes them only after the commit,
/// so a burst pays one fsync, not one per call. Reads share the connection under the same lock.
/// </summary>
internal sealed class SqliteEventQueue : IEventQueue, IDeadLetterStore, IDisposable
{
    internal const int Waiting = 0, Leased = 1, Deferred = 2, Dead = 3;

    /// <summary>Meter <c>Klaviyo.Relay.Local</c>: the group commit's timings, for load runs (<c>dotnet-counters</c>).</summary>
    public const string MeterName = "Klaviyo.Relay.Local";
    private static readonly System.Diagnostics.Metrics.Meter s_meter = new(MeterName);
    private static readonly System.Diagnostics.Metrics.Histogram<double> s_commitDuration = s_meter.CreateHistogram<double>(
        "klaviyo.relay.local.commit.duration", "ms", "One group transaction: its writes, then the synced commit.");
    private static readonly System.Diagnostics.Metrics.Histogram<int> s_commitWrites = s_meter.CreateHistogram<int>(
        "klaviyo.relay.local.commit.writes", "{write}", "Writes (requests, leases, settlements) in one group transaction.");
    private static readonly System.Diagnostics.Metrics.Histogram<double> s_writeWait = s_meter.CreateHistogram<double>(
        "klaviyo.relay.local.write.duration", "ms", "From a write's hand-over to the writer to its commit.");

    private readonly Lock _gate = new();
    private readonly SqliteConnection _db;
    private readonly TimeProvider _time;
    private readonly TimeSpan _duplicateWindow;
    private readonly long _maxBacklog;
    private readonly long _minFreeDiskBytes;
    private readonly SemaphoreSlim _available = new(0, 1);
    private readonly System.Threading.Channels.Channel<WriteItem> _writes =
        System.Threading.Channels.Channel.CreateUnbounded<WriteItem>(new System.Threading.Channels.UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;
    private readonly FileStream _ownership;
    private long _backlog; // changed by the writer only
    private bool _closed;

    private readonly LocalOrdering _ordering;

    private SqliteEventQueue(SqliteConnection db, FileStream ownership, string path, LocalOptions options, TimeProvider time, long leasesReleased, LocalOrdering ordering)
    {
        _ordering = ordering;
        _db = db;
        _ownership = ownership;
        Path = path;
        LeasesReleasedAtOpen = leasesReleased;
        _time = time;
        _duplicateWindow = options.DuplicateWindow;
        _maxBacklog = options.MaxBacklog;
        _minFreeDiskBytes = options.MinFreeDiskBytes;
        _backlog = Scalar($"SELECT COUNT(*) FROM messages WHERE state < {Dead}");
        // Its own thread: a group transaction (statements, then a synced commit) blocks for milliseconds, and on a pool
        // thread that wait would take a worker from the ingest requests and the relay's batches on a small machine.
        _writer = Task.Factory.StartNew(WriteLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Most writes committed in one transaction.</summary>
    private const int MaxGroup = 256;

    /// <summary>The database file (full path).</summary>
    public string Path { get; }

    /// <summary>Events a previous process held under a lease when it ended (killed, power cut), made due again at open.</summary>
    public long LeasesReleasedAtOpen { get; }

    /// <summary>What the ownership lock is taken on: the database file itself, so that nothing short of deleting the
    /// database can let a second relay in; on Windows, where another handle with no sharing would keep SQLite out of the
    /// file, a <c>relay.db.lock</c> beside it (Windows refuses to delete a file while it is held open).</summary>
    public static string LockPath(string databasePath) => OperatingSystem.IsWindows() ? databasePath + ".lock" : databasePath;

    /// <summary>Opens (or creates) the database at <see cref="LocalOptions.DatabasePath"/>; a path that cannot be opened
    /// or written throws <see cref="LocalStartupException"/> naming <c>Local__DatabasePath</c>, and so does a database
    /// another relay process owns. The owner is the database's only user, so every lease left in it belongs to a process
    /// that ended without settling: they are handed out again at once instead of waiting out <c>Local__LeaseDuration</c>.</summary>
    /// <param name="ordering">Per-profile ordering (spec 10); off when null.</param>
    public static SqliteEventQueue Open(LocalOptions options, TimeProvider? time = null, LocalOrdering? ordering = null)
    {
        var path = System.IO.Path.GetFullPath(options.DatabasePath);
        time ??= TimeProvider.System;
        SqliteConnection? db = null;
        FileStream? ownership = null;
        try
        {
            var directory = System.IO.Path.GetDirectoryName(path);
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }
            ownership = TakeOwnership(path);
            db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString());
            db.Open();
            Execute(db, "PRAGMA busy_timeout = 5000;");
            var journal = Convert.ToString(new SqliteCommand("PRAGMA journal_mode = WAL;", db).ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
            if (!string.Equals(journal, "wal", StringComparison.OrdinalIgnoreCase))
            {
                throw new LocalStartupException($"Local__DatabasePath: '{path}' cannot use a WAL journal (got '{journal}'); put it on a local disk.");
            }
            Execute(db, $"""
                PRAGMA synchronous = FULL;
                CREATE TABLE IF NOT EXISTS messages (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    message_id TEXT NOT NULL,
                    event_message_id TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    body BLOB NOT NULL,
                    attempt INTEGER NOT NULL,
                    state INTEGER NOT NULL,
                    due INTEGER NOT NULL,
                    lease INTEGER,
                    enqueued_at INTEGER NOT NULL,
                    reason TEXT,
                    description TEXT,
                    dead_lettered_at INTEGER);
                CREATE INDEX IF NOT EXISTS messages_pending ON messages (due) WHERE state <= 1;
                CREATE INDEX IF NOT EXISTS messages_state ON messages (state);
                CREATE INDEX IF NOT EXISTS messages_trackers ON messages (due) WHERE state <= {Leased} AND subject = '{RelayMessage.ImportJobSubject}';
                CREATE TABLE IF NOT EXISTS seen (message_id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS seen_at ON seen (at);
                CREATE TABLE IF NOT EXISTS ordering_valves (ordering_key TEXT PRIMARY KEY, until INTEGER NOT NULL) WITHOUT ROWID;
                """);
            // Per-profile ordering (spec 10) came with user_version 2: a database of an earlier version gains its columns.
            if (!HasColumn(db, "messages", "ordering_key"))
            {
                Execute(db, "ALTER TABLE messages ADD COLUMN ordering_key TEXT; ALTER TABLE messages ADD COLUMN blocker INTEGER NOT NULL DEFAULT 0;");
            }
            Execute(db, $"""
                CREATE INDEX IF NOT EXISTS messages_ordering ON messages (ordering_key, id) WHERE ordering_key IS NOT NULL AND state < {Dead};
                CREATE INDEX IF NOT EXISTS messages_blockers ON messages (ordering_key, id) WHERE blocker = 1 AND state < {Dead};
                PRAGMA user_version = 2;
                """);
            long released;
            using (var release = new SqliteCommand($"UPDATE messages SET state = {Waiting}, due = $now, lease = NULL WHERE state = {Leased}", db))
            {
                release.Parameters.AddWithValue("$now", time.GetUtcNow().ToUnixTimeMilliseconds());
                released = release.ExecuteNonQuery();
            }
            return new SqliteEventQueue(db, ownership, path, options, time, released, ordering ?? LocalOrdering.Off);
        }
        catch (Exception ex) when (ex is SqliteException or IOException or UnauthorizedAccessException or LocalStartupException)
        {
            db?.Dispose();
            ownership?.Dispose();
            if (ex is LocalStartupException)
            {
                throw;
            }
            var hint = ex is SqliteException sqlite && OpenHints.TryGetValue(sqlite.SqliteErrorCode, out var known)
                ? known
                : "Set Local__DatabasePath to a writable file.";
            throw new LocalStartupException($"Local__DatabasePath: cannot open or write the local queue database '{path}' ({ex.Message}). {hint}");
        }
    }

    /// <summary>What to do when opening fails with these SQLite result codes; any other failure is a path or permission
    /// the process cannot write.</summary>
    private static readonly Dictionary<int, string> OpenHints = new()
    {
        [11] = "The file is corrupt (SQLITE_CORRUPT): stop, move it aside with its -wal and -shm files (sqlite3's .recover can often save its rows), and start again with a new database, or set Local__DatabasePath to another file.",
        [26] = "The file is not a SQLite database (SQLITE_NOTADB: it is corrupt or another program's file): move it aside with its -wal and -shm files (sqlite3's .recover can often save its rows if it was one), or set Local__DatabasePath to another file.",
        [13] = "The disk is full (SQLITE_FULL): free space on it, or set Local__DatabasePath to a file on another disk.",
    };

    /// <summary>
    /// Takes the database's ownership lock, held until <see cref="Dispose"/>: the database file itself (<see cref="LockPath"/>)
    /// opened with <see cref="FileShare.None"/>, which .NET takes as an exclusive <c>flock</c> on Linux and macOS (and as a
    /// share mode on Windows, on <c>relay.db.lock</c>). A lock file beside the database could be deleted while held, and a
    /// second process would then lock a new file of the same name and share the database; the database's own inode cannot
    /// be swapped from under a running relay without deleting the database. The lock belongs to the open handle, which the
    /// kernel closes when the process ends however it ends (<c>kill -9</c>, a crash), so a dead owner never leaves a stale
    /// lock, and there is no process-id check to get wrong. SQLite locks with <c>fcntl</c> record locks, which on Linux
    /// are independent of <c>flock</c>, so the relay's own connection and <c>sqlite3</c> reading the file are unaffected;
    /// the handle is only ever closed after the connection (closing any handle of a file drops the process's
    /// <c>fcntl</c> locks on it), and nothing is written through it.
    /// </summary>
    private static FileStream TakeOwnership(string path)
    {
        var lockPath = LockPath(path);
        if (AppContext.TryGetSwitch("System.IO.DisableFileLocking", out var disabled) && disabled
            || Environment.GetEnvironmentVariable("DOTNET_SYSTEM_IO_DISABLEFILELOCKING") is "1" or "true" or "TRUE" or "True")
        {
            throw new LocalStartupException($"Local__DatabasePath: DOTNET_SYSTEM_IO_DISABLEFILELOCKING turns off the lock that keeps '{path}' to one relay process; unset it.");
        }
        try
        {
            return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 1);
        }
        catch (IOException ex) when (IsHeldElsewhere(ex))
        {
            throw new LocalStartupException(
                $"Local__DatabasePath: another relay process holds '{path}' (its lock on {lockPath} is taken); one database has one owner. " +
                "Stop that relay, or set Local__DatabasePath to another file for this one.");
        }
    }

    /// <summary>The lock is held by another handle: EWOULDBLOCK from <c>flock</c> (.NET keeps errno as the HResult) or
    /// a Windows sharing/lock violation.</summary>
    private static bool IsHeldElsewhere(IOException ex) =>
        OperatingSystem.IsWindows()
            ? (ex.HResult & 0xFFFF) is 32 or 33
            : ex.HResult == (OperatingSystem.IsLinux() ? 11 : 35);

    /// <summary>Stops accepting events (the app is stopping); what is stored stays for the next start.</summary>
    public void Close()
    {
        lock (_gate)
        {
            _closed = true;
        }
    }

    /// <summary>Commits every new event of a request in one transaction, or none: duplicates of the window are
    /// dropped (answered 202 all the same), and a request that would take the backlog past <c>Local:MaxBacklog</c>
    /// is refused whole with <see cref="BacklogFullException"/>.</summary>
    public Task SendAsync(IReadOnlyList<QueuedEvent> events, CancellationToken cancellationToken = default)
    {
        // The floor keeps room for the writes that drain the queue (leases, settlements, dead letters): a full disk
        // would stop those too, leaving accepted events stuck while Klaviyo is healthy.
        if (_minFreeDiskBytes > 0 && FreeDiskBytes() is var free and >= 0 && free < _minFreeDiskBytes)
        {
            throw new DiskFloorException(Path, free, _minFreeDiskBytes);
        }
        return InsertAsync(events, due: null, fromIngest: true);
    }

    /// <summary>Bytes free for this process on the disk holding the database; -1 when the system cannot say.</summary>
    internal long FreeDiskBytes()
    {
        try
        {
            return new DriveInfo(System.IO.Path.GetDirectoryName(Path)!).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return -1;
        }
    }

    /// <summary>The relay's own message for later (an import job's tracker): taken while stopping and past
    /// <c>Local:MaxBacklog</c>, since it replaces one the relay is settling and guards events already accepted.</summary>
    public Task ScheduleAsync(QueuedEvent queuedEvent, DateTimeOffset enqueueAt, CancellationToken cancellationToken = default) => InsertAsync([queuedEvent], enqueueAt, fromIngest: false);

    /// <summary>Leases up to <paramref name="max"/> events that are due (ready, a retry come due, or a lapsed lease)
    /// for <paramref name="leaseFor"/>, oldest first, in one commit. With ordering on (spec 10), an ordered event is not
    /// leased while an earlier ordered event of its key is a blocker (<see cref="BlockerCondition"/>), nor without every
    /// earlier ordered event of its key that is ready too: it just stays queued, spending nothing, until the blocker is
    /// settled, or the key's valve is open.</summary>
    public Task<List<LeasedEvent>> LeaseAsync(int max, TimeSpan leaseFor) => LeaseAsync(max, leaseFor, "", _ordering.Enabled);

    /// <summary>As <see cref="LeaseAsync(int, TimeSpan)"/>, import-job trackers only (never ordered): their lane, so a
    /// job's status read never waits behind the event backlog (spec 8.3; found through an index of their own).</summary>
    public Task<List<LeasedEvent>> LeaseTrackersAsync(int max, TimeSpan leaseFor) => LeaseAsync(max, leaseFor, $"AND subject = '{RelayMessage.ImportJobSubject}'", ordered: false);

    /// <summary>As <see cref="LeaseAsync(int, TimeSpan)"/>, without the trackers (<see cref="LeaseTrackersAsync"/> hands those out).</summary>
    public Task<List<LeasedEvent>> LeaseEventsAsync(int max, TimeSpan leaseFor) => LeaseAsync(max, leaseFor, $"AND subject <> '{RelayMessage.ImportJobSubject}'", _ordering.Enabled);

    private Task<List<LeasedEvent>> LeaseAsync(int max, TimeSpan leaseFor, string lane, bool ordered)
    {
        var now = Now();
        var token = NewToken();
        if (!ordered)
        {
            return WriteAsync(transaction =>
            {
                using var command = Command(transaction, $"""
                    UPDATE messages SET state = {Leased}, due = $until, lease = $token
                    WHERE id IN (SELECT id FROM messages WHERE state <= {Leased} {lane} AND due <= $now ORDER BY due, id LIMIT $max)
                    RETURNING {LeasedColumns}
                    """, ("$until", now + (long)leaseFor.TotalMilliseconds), ("$token", token), ("$now", now), ("$max", max));
                return ReadLeased(command, token);
            });
        }
        return WriteAsync(transaction =>
        {
            var candidates = new List<(long Id, string? Key, bool ValveOpen)>();
            using (var select = Command(transaction, $"""
                SELECT m.id, m.ordering_key, m.ordering_key IS NOT NULL AND EXISTS (SELECT 1 FROM ordering_valves v WHERE v.ordering_key = m.ordering_key AND v.until > $now)
                FROM messages m
                WHERE m.state <= {Leased} {lane} AND m.due <= $now
                  AND (m.ordering_key IS NULL
                       OR NOT EXISTS (SELECT 1 FROM messages b WHERE b.ordering_key = m.ordering_key AND b.state < {Dead} AND b.id < m.id AND ({BlockerCondition}))
                       OR EXISTS (SELECT 1 FROM ordering_valves v WHERE v.ordering_key = m.ordering_key AND v.until > $now))
                ORDER BY m.due, m.id LIMIT $max
                """, ("$now", now), ("$max", max)))
            using (var reader = select.ExecuteReader())
            {
                while (reader.Read())
                {
                    candidates.Add((reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetBoolean(2)));
                }
            }
            var chosen = candidates.Select(c => c.Id).ToHashSet();
            // An earlier ordered event of a key that is ready but was cut off by the limit goes first: the later ones
            // wait for the next lease rather than overtake it. (One that is held is behind a blocker that holds the later
            // ones too, so below the limit there is nothing to check.)
            foreach (var key in candidates.Count < max ? [] : candidates.Where(c => c.Key is not null && !c.ValveOpen).GroupBy(c => c.Key!))
            {
                var last = key.Max(c => c.Id);
                // "state < Dead" lets SQLite use the partial index messages_ordering (without it: a scan of the table per key).
                using var earlier = Command(transaction, $"SELECT id FROM messages WHERE ordering_key = $key AND state < {Dead} AND state <= {Leased} AND due <= $now AND id <= $last ORDER BY id",
                    ("$key", key.Key), ("$last", last), ("$now", now));
                using var reader = earlier.ExecuteReader();
                var gap = long.MaxValue;
                while (reader.Read())
                {
                    if (!chosen.Contains(reader.GetInt64(0)))
                    {
                        gap = reader.GetInt64(0);
                        break;
                    }
                }
                foreach (var candidate in key.Where(c => c.Id > gap))
                {
                    chosen.Remove(candidate.Id);
                }
            }
            if (chosen.Count == 0)
            {
                return [];
            }
            using var command = Command(transaction, $"""
                UPDATE messages SET state = {Leased}, due = $until, lease = $token
                WHERE id IN ({string.Join(',', chosen)})
                RETURNING {LeasedColumns}
                """, ("$until", now + (long)leaseFor.TotalMilliseconds), ("$token", token));
            var leased = ReadLeased(command, token);
            var order = candidates.Select((c, i) => (c.Id, i)).ToDictionary(p => p.Id, p => p.i);
            leased.Sort((a, b) => order[a.Sequence].CompareTo(order[b.Sequence]));
            return leased;
        });
    }

    /// <summary>What makes a pending ordered row <c>b</c> a blocker of the later rows of its key (spec 10): it waits for
    /// a retry (<c>blocker</c>, set in the update that scheduled it; it stays set while the retry is leased, until the
    /// row is settled), or it is the first row after a dead letter (<c>blocker</c> too), which goes alone. A row that never
    /// failed holds nothing, in flight or parked for an import job, as on Azure: ready rows of one key are leased
    /// together (spec 8.3 merges them in event-time order).</summary>
    private const string BlockerCondition = "b.blocker = 1"; // with "b.state < 3" beside it: the partial index messages_blockers

    private const string LeasedColumns = "id, message_id, event_message_id, subject, body, attempt, ordering_key";

    /// <summary>How long a deferred event handed out again stays locked to that taker, as Service Bus locks it.</summary>
    public static readonly TimeSpan DeferredLock = TimeSpan.FromMinutes(2);

    /// <summary>Hands deferred events out again by sequence number (under a new lease token, locked for
    /// <see cref="DeferredLock"/>), for whoever parked them. One locked now is not handed out, as Service Bus answers
    /// <c>MessageNotFound</c>; its lock lapsing parks it again. A deferred row's <c>due</c> is when it was parked, or
    /// while locked when the lock ends.</summary>
    public Task<List<LeasedEvent>> ReceiveDeferredAsync(IReadOnlyList<long> sequences)
    {
        var token = NewToken();
        var now = Now();
        return WriteAsync(transaction =>
        {
            var result = new List<LeasedEvent>();
            foreach (var sequence in sequences)
            {
                using var command = Command(transaction, $"UPDATE messages SET lease = $token, due = $until WHERE id = $id AND state = {Deferred} AND due <= $now RETURNING {LeasedColumns}",
                    ("$token", token), ("$id", sequence), ("$now", now), ("$until", now + (long)DeferredLock.TotalMilliseconds));
                result.AddRange(ReadLeased(command, token));
            }
            return result;
        });
    }

    /// <summary>Deletes delivered or skipped events still held by their lease; returns how many were.</summary>
    public async Task<int> CompleteAsync(IReadOnlyList<LeasedEvent> events) => (await SettleAsync(events, (transaction, leased) =>
        Command(transaction, $"DELETE FROM messages WHERE id = $id AND lease = $token AND state IN ({Leased}, {Deferred})", ("$id", leased.Sequence), ("$token", leased.LeaseToken)), leavesBacklog: true).ConfigureAwait(false)).Count;

    /// <summary>Makes each event due again at <paramref name="due"/> as <paramref name="nextAttempt"/>, under the retry
    /// copy's id (<see cref="RelayMessage.RetryMessageId"/>): one update, so it survives restarts like any row.
    /// An ordered event scheduled so is its key's blocker until it is settled (spec 10): the valve is checked then.</summary>
    public async Task<int> RetryAsync(IReadOnlyList<LeasedEvent> events, int nextAttempt, DateTimeOffset due) => (await SettleAsync(events, (transaction, leased) =>
        Command(transaction, $"UPDATE messages SET state = {Waiting}, due = $due, attempt = $attempt, message_id = $messageId, lease = NULL, blocker = ordering_key IS NOT NULL WHERE id = $id AND lease = $token AND state IN ({Leased}, {Deferred})",
            ("$due", due.ToUnixTimeMilliseconds()), ("$attempt", nextAttempt), ("$messageId", RelayMessage.RetryMessageId(leased.MessageId, nextAttempt)),
            ("$id", leased.Sequence), ("$token", leased.LeaseToken)), leavesBacklog: false,
        after: (transaction, leased) => CheckValve(transaction, leased.OrderingKey)).ConfigureAwait(false)).Count;

    /// <summary>Keeps each event as a dead letter with its reason; returns those that were (still held by their lease).
    /// After an ordered event's dead letter, the next pending ordered event of its key goes first, alone (spec 10): it is
    /// marked <c>blocker</c>, holding the later ones until it is settled.</summary>
    public Task<List<LeasedEvent>> DeadLetterAsync(IReadOnlyList<LeasedEvent> events, string reason, string? description) => SettleAsync(events, (transaction, leased) =>
        Command(transaction, $"UPDATE messages SET state = {Dead}, reason = $reason, description = $description, dead_lettered_at = $now, lease = NULL WHERE id = $id AND lease = $token AND state IN ({Leased}, {Deferred})",
            ("$reason", reason), ("$description", (object?)description ?? DBNull.Value), ("$now", Now()), ("$id", leased.Sequence), ("$token", leased.LeaseToken)), leavesBacklog: true,
        after: (transaction, leased) =>
        {
            if (leased.OrderingKey is { } key)
            {
                using var probe = Command(transaction, $"UPDATE messages SET blocker = 1 WHERE id = (SELECT id FROM messages WHERE ordering_key = $key AND state < {Dead} AND id > $id ORDER BY id LIMIT 1)",
                    ("$key", key), ("$id", leased.Sequence));
                probe.ExecuteNonQuery();
            }
        });

    /// <summary>Renews the leases of events kept for the next batch (gathered for a fuller call): still held by this
    /// process, for another <paramref name="leaseFor"/> from now; returns those still held.</summary>
    public async Task<List<LeasedEvent>> RenewLeasesAsync(IReadOnlyList<LeasedEvent> events, TimeSpan leaseFor)
    {
        var until = Now() + (long)leaseFor.TotalMilliseconds;
        return await SettleAsync(events, (transaction, leased) =>
            Command(transaction, $"UPDATE messages SET due = $until WHERE id = $id AND lease = $token AND state = {Leased}", ("$until", until), ("$id", leased.Sequence), ("$token", leased.LeaseToken)), leavesBacklog: false).ConfigureAwait(false);
    }

    /// <summary>Parks leased events: not handed out again, not lapsing, until settled with their token.</summary>
    public async Task<int> DeferAsync(IReadOnlyList<LeasedEvent> events) => (await SettleAsync(events, (transaction, leased) =>
        Command(transaction, $"UPDATE messages SET state = {Deferred}, due = $now WHERE id = $id AND lease = $token AND state = {Leased}", ("$now", Now()), ("$id", leased.Sequence), ("$token", leased.LeaseToken)), leavesBacklog: false).ConfigureAwait(false)).Count;

    /// <summary>Which of <paramref name="sequences"/> are still deferred (locked or not).</summary>
    public IReadOnlySet<long> StillDeferred(IReadOnlyList<long> sequences)
    {
        var parked = new HashSet<long>();
        lock (_gate)
        {
            foreach (var chunk in sequences.Chunk(500))
            {
                using var command = new SqliteCommand($"SELECT id FROM messages WHERE state = {Deferred} AND id IN ({string.Join(',', chunk)})", _db);
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    parked.Add(reader.GetInt64(0));
                }
            }
        }
        return parked;
    }

    /// <summary>Up to <paramref name="max"/> events deferred before <paramref name="before"/> and not locked now, oldest first.</summary>
    public IReadOnlyList<long> DeferredBefore(DateTimeOffset before, int max)
    {
        var found = new List<long>();
        lock (_gate)
        {
            using var command = new SqliteCommand($"SELECT id FROM messages WHERE state = {Deferred} AND due < $before ORDER BY id LIMIT $max", _db);
            command.Parameters.AddWithValue("$before", before.ToUnixTimeMilliseconds());
            command.Parameters.AddWithValue("$max", max);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                found.Add(reader.GetInt64(0));
            }
        }
        return found;
    }

    /// <summary>Forgets messageIds older than the duplicate window.</summary>
    public Task<int> PruneDuplicatesAsync() => WriteAsync(transaction =>
    {
        using var command = Command(transaction, "DELETE FROM seen WHERE at < $cutoff", ("$cutoff", Now() - (long)_duplicateWindow.TotalMilliseconds));
        return command.ExecuteNonQuery();
    });

    /// <summary>Waits until events were added or <paramref name="timeout"/> passed (scheduled ones come due on their own).</summary>
    public async Task WaitForEventsAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        await _available.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);

    public BacklogCounts Counts()
    {
        var now = Now();
        lock (_gate)
        {
            using var command = new SqliteCommand($"""
                SELECT COALESCE(SUM(state = {Waiting} AND due <= $now), 0), COALESCE(SUM(state = {Waiting} AND due > $now), 0),
                       COALESCE(SUM(state = {Leased}), 0), COALESCE(SUM(state = {Deferred}), 0), COALESCE(SUM(state = {Dead}), 0)
                FROM messages
                """, _db);
            command.Parameters.AddWithValue("$now", now);
            using var reader = command.ExecuteReader();
            reader.Read();
            return new BacklogCounts(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4));
        }
    }

    /// <summary>Pages the database holds now; with <see cref="LimitPages"/> the tests stand in for a full disk.</summary>
    internal long PageCount() => Scalar("PRAGMA page_count");

    internal void LimitPages(long pages) => Scalar($"PRAGMA max_page_count = {pages}");

    public Task<IDeadLetterReader> OpenAsync(CancellationToken cancellationToken) => Task.FromResult<IDeadLetterReader>(new DeadLetterReader(this));

    public void Dispose()
    {
        _writes.Writer.TryComplete();
        _writer.GetAwaiter().GetResult();
        lock (_gate)
        {
            _db.Dispose();
        }
        _ownership.Dispose(); // after the database is closed: the next owner finds nothing of ours in use
        _available.Dispose();
    }

    private async Task InsertAsync(IReadOnlyList<QueuedEvent> events, DateTimeOffset? due, bool fromIngest)
    {
        var now = Now();
        var added = await WriteAsync(transaction =>
        {
            if (_closed && fromIngest)
            {
                throw new QueueClosedException();
            }
            var fresh = new List<QueuedEvent>(events.Count);
            var inRequest = new HashSet<string>(StringComparer.Ordinal);
            using (var seen = Command(transaction, "SELECT 1 FROM seen WHERE message_id = $id AND at >= $cutoff", ("$id", ""), ("$cutoff", now - (long)_duplicateWindow.TotalMilliseconds)))
            {
                foreach (var queued in events)
                {
                    seen.Parameters["$id"].Value = queued.MessageId;
                    if (inRequest.Add(queued.MessageId) && seen.ExecuteScalar() is null)
                    {
                        fresh.Add(queued);
                    }
                }
            }
            if (fromIngest && _backlog + fresh.Count > _maxBacklog)
            {
                throw new BacklogFullException(_maxBacklog);
            }
            using var remember = Command(transaction, "INSERT OR REPLACE INTO seen (message_id, at) VALUES ($id, $now)", ("$id", ""), ("$now", now));
            using var insert = Command(transaction, $"""
                INSERT INTO messages (message_id, event_message_id, subject, body, attempt, state, due, enqueued_at, ordering_key)
                VALUES ($id, $eventId, $subject, $body, $attempt, {Waiting}, $due, $now, $key)
                """, ("$id", ""), ("$eventId", ""), ("$subject", ""), ("$body", Array.Empty<byte>()), ("$attempt", 1), ("$due", due?.ToUnixTimeMilliseconds() ?? now), ("$now", now), ("$key", DBNull.Value));
            foreach (var queued in fresh)
            {
                remember.Parameters["$id"].Value = queued.MessageId;
                remember.ExecuteNonQuery();
                insert.Parameters["$id"].Value = queued.MessageId;
                insert.Parameters["$eventId"].Value = queued.EventMessageId ?? queued.MessageId;
                insert.Parameters["$subject"].Value = queued.Subject;
                insert.Parameters["$body"].Value = queued.Body.ToArray();
                insert.Parameters["$attempt"].Value = queued.Attempt;
                insert.Parameters["$key"].Value = (object?)queued.Ordering?.Key ?? DBNull.Value;
                insert.ExecuteNonQuery();
            }
            foreach (var key in fresh.Select(q => q.Ordering?.Key).Distinct())
            {
                CheckValve(transaction, key);
            }
            _backlog += fresh.Count;
            return fresh.Count;
        }).ConfigureAwait(false);
        if (added > 0 && _available.CurrentCount == 0)
        {
            try
            {
                _available.Release();
            }
            catch (SemaphoreFullException)
            {
                // another insert signalled first
            }
        }
    }

    /// <param name="after">Run in the same transaction for each event the statement settled.</param>
    private Task<List<LeasedEvent>> SettleAsync(IReadOnlyList<LeasedEvent> events, Func<SqliteTransaction, LeasedEvent, SqliteCommand> statement, bool leavesBacklog,
        Action<SqliteTransaction, LeasedEvent>? after = null) =>
        WriteAsync(transaction =>
        {
            var done = new List<LeasedEvent>(events.Count);
            foreach (var leased in events)
            {
                using var command = statement(transaction, leased);
                if (command.ExecuteNonQuery() > 0)
                {
                    done.Add(leased);
                    after?.Invoke(transaction, leased);
                }
            }
            _backlog -= leavesBacklog ? done.Count : 0;
            return done;
        });

    /// <summary>Queues <paramref name="work"/> for the writer, which runs it in the next group transaction; completes
    /// after that commit. A storage failure (disk full, I/O error) becomes <see cref="LocalQueueWriteException"/>, a
    /// <see cref="QueueUnavailableException"/>, so the ingest answers 503, never 202. <paramref name="work"/> changes
    /// <c>_backlog</c> only after its last statement, so a rolled-back savepoint leaves the count right.</summary>
    private Task<T> WriteAsync<T>(Func<SqliteTransaction, T> work)
    {
        var item = new WriteItem<T>(work);
        if (!_writes.Writer.TryWrite(item))
        {
            throw new ObjectDisposedException(nameof(SqliteEventQueue));
        }
        return item.Task;
    }

    private void WriteLoop()
    {
        var group = new List<WriteItem>(MaxGroup);
        while (WaitToRead())
        {
            while (group.Count < MaxGroup && _writes.Reader.TryRead(out var item))
            {
                group.Add(item);
            }
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            lock (_gate)
            {
                var backlogBefore = _backlog;
                try
                {
                    using var transaction = _db.BeginTransaction(deferred: false);
                    for (var i = 0; i < group.Count; i++)
                    {
                        var savepoint = "w" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                        transaction.Save(savepoint);
                        try
                        {
                            group[i].Run(transaction);
                            transaction.Release(savepoint);
                        }
                        catch (Exception ex)
                        {
                            transaction.Rollback(savepoint);
                            transaction.Release(savepoint);
                            group[i].Error = ex is SqliteException sqlite ? new LocalQueueWriteException(Path, sqlite) : ex;
                        }
                    }
                    transaction.Commit();
                }
                catch (Exception ex)
                {
                    // The commit (or a rollback) failed: nothing of the group is stored, and every caller hears so.
                    _backlog = backlogBefore;
                    foreach (var item in group)
                    {
                        item.Error ??= new LocalQueueWriteException(Path, ex);
                    }
                }
            }
            var committed = System.Diagnostics.Stopwatch.GetTimestamp();
            s_commitDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started, committed).TotalMilliseconds);
            s_commitWrites.Record(group.Count);
            foreach (var item in group)
            {
                s_writeWait.Record(System.Diagnostics.Stopwatch.GetElapsedTime(item.Queued, committed).TotalMilliseconds);
                item.Complete();
            }
            group.Clear();
        }
    }

    /// <summary>Blocks this (dedicated) thread until a write is queued; false once the queue is disposed.</summary>
    private bool WaitToRead()
    {
        var waiting = _writes.Reader.WaitToReadAsync();
        return waiting.IsCompletedSuccessfully ? waiting.Result : waiting.AsTask().GetAwaiter().GetResult();
    }

    private abstract class WriteItem
    {
        public long Queued { get; } = System.Diagnostics.Stopwatch.GetTimestamp();

        public Exception? Error { get; set; }

        public abstract void Run(SqliteTransaction transaction);

        public abstract void Complete();
    }

    private sealed class WriteItem<T>(Func<SqliteTransaction, T> work) : WriteItem
    {
        private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T _result = default!;

        public Task<T> Task => _done.Task;

        public override void Run(SqliteTransaction transaction) => _result = work(transaction);

        public override void Complete()
        {
            if (Error is null)
            {
                _done.SetResult(_result);
            }
            else
            {
                _done.SetException(Error);
            }
        }
    }

    /// <summary>The valve of spec 10: more than <see cref="LocalOrdering.MaxHeldPerKey"/> ordered events of a key held
    /// behind its first blocker turns ordering off for that key for <see cref="LocalOrdering.ValveOpenFor"/>. Checked
    /// where the count can grow: an ordered event queued, or one becoming a blocker.</summary>
    private void CheckValve(SqliteTransaction transaction, string? key)
    {
        if (key is null || !_ordering.Enabled)
        {
            return;
        }
        var now = Now();
        using var held = Command(transaction, $"""
            SELECT COUNT(*) FROM messages WHERE ordering_key = $key AND state < {Dead} AND id > (
                SELECT MIN(b.id) FROM messages b WHERE b.ordering_key = $key AND b.state < {Dead} AND ({BlockerCondition}))
            AND NOT EXISTS (SELECT 1 FROM ordering_valves WHERE ordering_key = $key AND until > $now)
            """, ("$key", key), ("$now", now));
        var count = Convert.ToInt64(held.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        if (count <= _ordering.MaxHeldPerKey)
        {
            return;
        }
        using var open = Command(transaction, "INSERT OR REPLACE INTO ordering_valves (ordering_key, until) VALUES ($key, $until)",
            ("$key", key), ("$until", now + (long)_ordering.ValveOpenFor.TotalMilliseconds));
        open.ExecuteNonQuery();
        _ordering.ValveOpened?.Invoke(key, count);
    }

    private static bool HasColumn(SqliteConnection db, string table, string column)
    {
        using var command = new SqliteCommand($"SELECT 1 FROM pragma_table_info('{table}') WHERE name = $name", db);
        command.Parameters.AddWithValue("$name", column);
        return command.ExecuteScalar() is not null;
    }

    private long Scalar(string sql)
    {
        lock (_gate)
        {
            using var command = new SqliteCommand(sql, _db);
            return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    private SqliteCommand Command(SqliteTransaction transaction, string sql, params (string Name, object Value)[] parameters)
    {
        var command = new SqliteCommand(sql, _db, transaction);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return command;
    }

    private static List<LeasedEvent> ReadLeased(SqliteCommand command, long token)
    {
        var result = new List<LeasedEvent>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            result.Add(new LeasedEvent(reader.GetInt64(0), token, reader.GetString(1), reader.GetString(2), reader.GetString(3), (byte[])reader.GetValue(4), reader.GetInt32(5), reader.IsDBNull(6) ? null : reader.GetString(6)));
        }
        return result;
    }

    private static void Execute(SqliteConnection db, string sql)
    {
        using var command = new SqliteCommand(sql, db);
        command.ExecuteNonQuery();
    }

    private long Now() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static long NewToken() => BitConverter.ToInt64(RandomNumberGenerator.GetBytes(8));

    /// <summary>Dead letters for the replay, oldest first: the same <see cref="DeadLetterReplayer"/> as on Azure.</summary>
    private sealed class DeadLetterReader(SqliteEventQueue queue) : IDeadLetterReader
    {
        private long _after;

        public Task<IReadOnlyList<DeadLetteredMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken)
        {
            var result = new List<DeadLetteredMessage>();
            lock (queue._gate)
            {
                using var command = new SqliteCommand($"SELECT id, message_id, event_message_id, subject, body, reason, description, ordering_key FROM messages WHERE state = {Dead} AND id > $after ORDER BY id LIMIT $max", queue._db);
                command.Parameters.AddWithValue("$after", _after);
                command.Parameters.AddWithValue("$max", maxMessages);
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    _after = reader.GetInt64(0);
                    var properties = new Dictionary<string, object> { [MessageProperties.EventMessageId] = reader.GetString(2) };
                    if (!reader.IsDBNull(7))
                    {
                        properties[MessageProperties.OrderingKey] = reader.GetString(7); // a replay stays ordered
                    }
                    result.Add(new DeadLetteredMessage(
                        reader.GetString(1), reader.GetString(3), (byte[])reader.GetValue(4),
                        reader.IsDBNull(5) ? null : reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6), _after, properties));
                }
            }
            return Task.FromResult<IReadOnlyList<DeadLetteredMessage>>(result);
        }

        public Task RemoveAsync(DeadLetteredMessage message, CancellationToken cancellationToken) =>
            queue.WriteAsync(transaction =>
            {
                using var command = queue.Command(transaction, $"DELETE FROM messages WHERE id = $id AND state = {Dead}", ("$id", message.SequenceNumber));
                return command.ExecuteNonQuery();
            });

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>Local mode cannot start as configured; the message names the setting. Printed without a stack trace.</summary>
internal sealed class LocalStartupException(string message) : Exception(message);

/// <summary>The local queue is closed: the relay is stopping. The ingest answers 503.</summary>
internal sealed class QueueClosedException() : QueueUnavailableException("The local queue is closed: the relay is shutting down.");

/// <summary><c>Local:MaxBacklog</c> events are waiting: the ingest answers 503 with Retry-After and queues nothing.</summary>
internal sealed class BacklogFullException(long maxBacklog)
    : QueueUnavailableException($"The local queue holds Local__MaxBacklog ({maxBacklog}) events; try again later.");

/// <summary>The disk holding the database has less free space than <c>Local:MinFreeDiskBytes</c>: the ingest answers 503
/// with Retry-After and queues nothing; the relay keeps draining.</summary>
internal sealed class DiskFloorException(string path, long freeBytes, long floorBytes)
    : QueueUnavailableException($"The disk holding the local queue database {path} has {freeBytes} bytes free, below Local__MinFreeDiskBytes ({floorBytes}): no new events are taken until there is room, so the relay can still settle and drain what it holds.");

/// <summary>The database refused a write (disk full, I/O error): nothing of the transaction was stored.</summary>
internal sealed class LocalQueueWriteException(string path, Exception inner)
    : QueueUnavailableException($"The local queue database {path} could not be written ({(inner is SqliteException sqlite ? $"SQLite error {sqlite.SqliteErrorCode}: " : inner.GetType().Name + ": ")}{inner.Message}).");
