using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;

namespace Klaviyo.Functions.Local;

/// <summary>
/// The one source of local mode's operator view (spec section 11): <c>GET /api/status</c>, the status page drawn from
/// it, and the backlog of <c>GET /api/health</c>. The backlog and the dead letters come from the database (dead letters
/// through a read-only connection of their own, so the page never waits on the queue's writer), the rates from
/// <see cref="LocalActivity"/>. It carries what the dead letters already hold for the operator (a description and an
/// event per reason) and no key: descriptions are redacted when they are written.
/// </summary>
internal sealed class LocalStatus(SqliteEventQueue queue, LocalActivity activity, TimeProvider time) : IDisposable
{
    /// <summary>A sample event longer than this is cut (the dead-letter file and replay keep it whole).</summary>
    public const int MaxSampleChars = 2000;

    private readonly Lock _gate = new();
    private SqliteConnection? _reader;

    public BacklogCounts Backlog() => queue.Counts();

    /// <summary>The backlog as <c>/api/health</c> and <c>/api/status</c> both write it.</summary>
    public static JsonObject BacklogJson(BacklogCounts backlog) => new()
    {
        ["ready"] = backlog.Ready,
        ["scheduled"] = backlog.Scheduled,
        ["leased"] = backlog.Leased,
        ["deferred"] = backlog.Deferred,
        ["deadLettered"] = backlog.DeadLettered,
    };

    /// <summary>The body of <c>GET /api/status</c>; <paramref name="replay"/> says whether the replay route exists.</summary>
    public JsonObject Report(bool replay)
    {
        var snapshot = activity.Snapshot();
        return new JsonObject
        {
            ["generatedAt"] = time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            ["backlog"] = BacklogJson(Backlog()),
            ["rates"] = new JsonObject
            {
                ["seconds"] = LocalActivity.WindowSeconds,
                ["endsAt"] = snapshot.EndsAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
                ["accepted"] = Array(snapshot.Accepted),
                ["delivered"] = Array(snapshot.Delivered),
                ["deadLettered"] = Array(snapshot.DeadLettered),
            },
            ["sinceStart"] = new JsonObject
            {
                ["accepted"] = snapshot.AcceptedTotal,
                ["delivered"] = snapshot.DeliveredTotal,
                ["deadLettered"] = snapshot.DeadLetteredTotal,
            },
            ["klaviyo"] = new JsonArray(snapshot.Klaviyo.Select(e => (JsonNode)new JsonObject
            {
                ["endpoint"] = e.Endpoint,
                ["requests"] = e.Requests,
                ["tooManyRequests"] = e.TooManyRequests,
                ["noAnswer"] = e.NoAnswer,
            }).ToArray()),
            ["deadLetters"] = new JsonArray(DeadLetterGroups().Select(g => (JsonNode)new JsonObject
            {
                ["reason"] = g.Reason,
                ["count"] = g.Count,
                ["sample"] = new JsonObject
                {
                    ["messageId"] = g.MessageId,
                    ["description"] = g.Description,
                    ["attempt"] = g.Attempt,
                    ["deadLetteredAt"] = g.DeadLetteredAt?.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
                    ["event"] = g.Event,
                },
            }).ToArray()),
            ["replay"] = replay,
        };
    }

    /// <summary>Dead letters by reason, most first, each with its latest dead letter as the sample.</summary>
    public IReadOnlyList<DeadLetterGroup> DeadLetterGroups()
    {
        var groups = new List<DeadLetterGroup>();
        lock (_gate)
        {
            _reader ??= OpenReader(queue.Path);
            var latest = new List<(string Reason, long Count, long Id)>();
            using (var command = new SqliteCommand($"SELECT COALESCE(reason, ''), COUNT(*), MAX(id) FROM messages WHERE state = {SqliteEventQueue.Dead} GROUP BY reason ORDER BY COUNT(*) DESC, reason", _reader))
            using (var reader = command.ExecuteReader())
            {
                while (reader.Read())
                {
                    latest.Add((reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)));
                }
            }
            foreach (var (reason, count, id) in latest)
            {
                using var command = new SqliteCommand("SELECT event_message_id, description, attempt, dead_lettered_at, body FROM messages WHERE id = $id", _reader);
                command.Parameters.AddWithValue("$id", id);
                using var reader = command.ExecuteReader();
                if (reader.Read())
                {
                    groups.Add(new DeadLetterGroup(
                        reason, count, reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt32(2),
                        reader.IsDBNull(3) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)),
                        Sample((byte[])reader.GetValue(4))));
                }
            }
        }
        return groups;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _reader?.Dispose();
            _reader = null;
        }
    }

    private static SqliteConnection OpenReader(string path)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var timeout = new SqliteCommand("PRAGMA busy_timeout = 2000;", connection);
        timeout.ExecuteNonQuery();
        return connection;
    }

    private static string Sample(byte[] body)
    {
        var text = Encoding.UTF8.GetString(body);
        return text.Length <= MaxSampleChars ? text : text[..(MaxSampleChars - 1)] + "…";
    }

    private static JsonArray Array(long[] values) => new(values.Select(v => (JsonNode)JsonValue.Create(v)).ToArray());
}

/// <summary>The dead letters of one reason: how many, and the latest as a sample.</summary>
internal sealed record DeadLetterGroup(string Reason, long Count, string MessageId, string? Description, int Attempt, DateTimeOffset? DeadLetteredAt, string Event);
