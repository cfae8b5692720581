using System.Globalization;
using Klaviyo.Functions.Relay;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>
/// Table storage as the barrier meets it, in memory: every write gives the row a new ETag; an update or delete with an
/// ETag that no longer matches fails (Table storage's 412), one of a row that is gone too (404); reads and writes are
/// counted. It can fail reads on demand (storage unreachable), and run a hook before an update (another instance
/// writing between this one's read and write).
/// </summary>
internal sealed class FakeBarrierTable : IBarrierTable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Partition, string Row), BarrierRow> _rows = [];
    private long _etag;

    /// <summary>Thrown by every read while set.</summary>
    public Exception? ReadFailure { get; set; }

    /// <summary>Runs once, before the next conditional update is checked.</summary>
    public Action? BeforeNextUpdate { get; set; }

    public int Reads { get; private set; }

    public int Writes { get; private set; }

    public int Conflicts { get; private set; }

    public IReadOnlyList<BarrierRow> Rows
    {
        get { lock (_gate) { return [.. _rows.Values]; } }
    }

    public Task<IReadOnlyList<BarrierRow>> ReadPartitionAsync(string partitionKey, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            Reads++;
            if (ReadFailure is { } failure)
            {
                throw failure;
            }
            return Task.FromResult<IReadOnlyList<BarrierRow>>(_rows.Values.Where(r => r.PartitionKey == partitionKey).OrderBy(r => r.RowKey, StringComparer.Ordinal).ToList());
        }
    }

    public Task UpsertAsync(BarrierRow row, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            Writes++;
            Store(row);
        }
        return Task.CompletedTask;
    }

    public Task<bool> UpdateAsync(BarrierRow row, CancellationToken cancellationToken)
    {
        var hook = BeforeNextUpdate;
        BeforeNextUpdate = null;
        hook?.Invoke();
        lock (_gate)
        {
            Writes++;
            if (!_rows.TryGetValue((row.PartitionKey, row.RowKey), out var current) || current.ETag != row.ETag)
            {
                Conflicts++;
                return Task.FromResult(false);
            }
            Store(row);
            return Task.FromResult(true);
        }
    }

    public Task<bool> DeleteAsync(string partitionKey, string rowKey, string etag, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            Writes++;
            if (!_rows.TryGetValue((partitionKey, rowKey), out var current) || (etag != "*" && current.ETag != etag))
            {
                Conflicts++;
                return Task.FromResult(false);
            }
            _rows.Remove((partitionKey, rowKey));
            return Task.FromResult(true);
        }
    }

    /// <summary>Writes a row as another instance would (a new ETag), without counting it.</summary>
    public BarrierRow Put(BarrierRow row)
    {
        lock (_gate)
        {
            return Store(row);
        }
    }

    private BarrierRow Store(BarrierRow row)
    {
        var stored = row with { ETag = "W/\"" + (++_etag).ToString(CultureInfo.InvariantCulture) + "\"" };
        _rows[(row.PartitionKey, row.RowKey)] = stored;
        return stored;
    }
}
