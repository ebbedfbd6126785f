import PocketLM
import SwiftUI

/// The built-in catalog: whether each model fits this phone (the memory
/// planner), and its download with pause, resume, cancel and delete.
struct ModelsView: View {
    @ObservedObject var models: ModelsModel
    @ObservedObject var chat: ChatModel
    /// Load the installed model at this path.
    let onUse: (String) -> Void

    var body: some View {
        NavigationStack {
            List(models.rows) { row in
                ModelRowView(row: row, inUse: row.installedPath != nil && row.installedPath == chat.modelPath,
                             loading: chat.isLoading, models: models, onUse: onUse)
            }
            .navigationTitle("Models")
            .refreshable { await models.refresh() }
            .task { await models.refresh() }
        }
    }
}

private struct ModelRowView: View {
    let row: ModelRow
    let inUse: Bool
    /// A model is loading: one load at a time.
    let loading: Bool
    let models: ModelsModel
    let onUse: (String) -> Void

    var body: some View {
        VStack(alignment: .leading, spacing: 6) {
            HStack {
                Text(row.name).font(.headline)
                if inUse {
                    Text("in use").font(.caption2.bold()).padding(.horizontal, 6).padding(.vertical, 1)
                        .background(Color.accentColor.opacity(0.2), in: Capsule())
                }
            }
            Text(summary)
                .font(.caption)
                .foregroundStyle(row.fits ? Color.secondary : Color.red)
            if let note = row.note {
                Text(note).font(.caption).foregroundStyle(.secondary)
            }
            actions
        }
        .padding(.vertical, 4)
        .buttonStyle(.bordered) // several buttons in one row: each keeps its own tap target
    }

    private var summary: String {
        let fit = row.fits ? "fits this phone" : "does not fit"
        guard let bytes = row.downloadBytes else { return fit }
        return formatBytes(bytes) + " · " + fit
    }

    @ViewBuilder private var actions: some View {
        switch row.state {
        case .available:
            Button("Download") { models.download(row.id) }
        case .downloading(let done, let total, let paused):
            if let total, total > 0 {
                ProgressView(value: Double(min(done, total)), total: Double(total))
            } else if !paused {
                ProgressView()
            }
            Text((paused ? "Paused · " : "Downloading · ") + formatBytes(done) + (total.map { " of " + formatBytes($0) } ?? ""))
                .font(.caption).monospacedDigit()
            HStack {
                if paused {
                    Button("Resume") { models.resume(row.id) }
                } else {
                    Button("Pause") { models.pause(row.id) }
                }
                Button("Cancel", role: .destructive) { Task { await models.cancel(row.id) } }
            }
        case .installed(let path):
            HStack {
                Button("Use") { onUse(path) }.buttonStyle(.borderedProminent).disabled(inUse || loading)
                Button("Delete", role: .destructive) { Task { await models.delete(row.id) } }.disabled(inUse)
            }
        case .failed(let message):
            Text(message).font(.caption).foregroundStyle(.red)
            HStack {
                Button("Resume download") { models.download(row.id) }
                Button("Discard", role: .destructive) { Task { await models.cancel(row.id) } }
            }
        }
    }
}

private extension ChatModel {
    var isLoading: Bool {
        if case .loading = model { return true }
        return false
    }
}

private extension ModelRow {
    var installedPath: String? {
        if case .installed(let path) = state { return path }
        return nil
    }
}

func formatBytes(_ bytes: Int64) -> String {
    ByteCountFormatter.string(fromByteCount: bytes, countStyle: .file)
}
