using Azure;
using Azure.Data.Tables;

namespace Klaviyo.Functions.Relay;

/// <summary>One row of the barrier's table: <c>b-&lt;arrival&gt;</c> a blocker, <c>valve</c> an opened valve,
/// <c>alone</c> the mark a dead letter leaves (the next message goes alone).</summary>
/// <param name="Due">A blocker's retry time; a valve's end; when the alone mark was left.</param>
/// <param name="Held">Messages held behind a blocker since its last retry was scheduled (the valve counts them).</param>
/// <param name="ETag">As read; empty for a row not read from the table.</param>
internal sealed record BarrierRow(string PartitionKey, string RowKey, DateTimeOffset Due, long Held = 0, string ETag = "");

/// <summary>
/// The few Table storage operations the barrier uses, with Table storage's own semantics: rows carry ETags, an add of
/// an existing row conflicts (409), an update or delete whose ETag no longer matches fails (412). Azure:
/// <see cref="AzureBarrierTable"/>; tests: a fake that keeps the same rules.
/// </summary>
internal interface IBarrierTable
{
    /// <summary>Every row of one partition (one key): one read.</summary>
    Task<IReadOnlyList<BarrierRow>> ReadPartitionAsync(string partitionKey, CancellationToken cancellationToken);

    /// <summary>Writes the row whatever is there (insert or replace).</summary>
    Task UpsertAsync(BarrierRow row, CancellationToken cancellationToken);

    /// <summary>Replaces the row if its ETag still matches: false on 412 (changed since read) or 404 (gone).</summary>
    Task<bool> UpdateAsync(BarrierRow row, CancellationToken cancellationToken);

    /// <summary>Deletes the row if its ETag matches (<c>*</c>: any): false on 412 or 404.</summary>
    Task<bool> DeleteAsync(string partitionKey, string rowKey, string etag, CancellationToken cancellationToken);
}

/// <summary>The barrier's table in the Functions storage account (<c>AzureWebJobsStorage</c>), created on first use.</summary>
internal sealed class AzureBarrierTable(Func<TableClient> client) : IBarrierTable
{
    private readonly Lazy<TableClient> _table = new(client);

    private TableClient table => _table.Value;

    public const string TableName = "RelayOrdering";

    private const string DueColumn = "Due";
    private const string HeldColumn = "Held";

    private Task? _created;

    public async Task<IReadOnlyList<BarrierRow>> ReadPartitionAsync(string partitionKey, CancellationToken cancellationToken)
    {
        await (_created ??= table.CreateIfNotExistsAsync()).ConfigureAwait(false);
        var rows = new List<BarrierRow>();
        await foreach (var entity in table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {partitionKey}"), cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            rows.Add(new BarrierRow(entity.PartitionKey, entity.RowKey, entity.GetDateTimeOffset(DueColumn) ?? DateTimeOffset.MinValue, entity.GetInt64(HeldColumn) ?? 0, entity.ETag.ToString()));
        }
        return rows;
    }

    public async Task UpsertAsync(BarrierRow row, CancellationToken cancellationToken)
    {
        await (_created ??= table.CreateIfNotExistsAsync()).ConfigureAwait(false);
        await table.UpsertEntityAsync(ToEntity(row), TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> UpdateAsync(BarrierRow row, CancellationToken cancellationToken)
    {
        try
        {
            await table.UpdateEntityAsync(ToEntity(row), new ETag(row.ETag), TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (RequestFailedException ex) when (ex.Status is 412 or 404)
        {
            return false;
        }
    }

    public async Task<bool> DeleteAsync(string partitionKey, string rowKey, string etag, CancellationToken cancellationToken)
    {
        try
        {
            await table.DeleteEntityAsync(partitionKey, rowKey, new ETag(etag), cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (RequestFailedException ex) when (ex.Status is 412 or 404)
        {
            return false;
        }
    }

    private static TableEntity ToEntity(BarrierRow row) => new(row.PartitionKey, row.RowKey) { [DueColumn] = row.Due, [HeldColumn] = row.Held };
}
