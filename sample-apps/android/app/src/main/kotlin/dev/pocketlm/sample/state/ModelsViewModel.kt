package dev.pocketlm.sample.state

import dev.pocketlm.DownloadEvent
import dev.pocketlm.ModelCatalog
import dev.pocketlm.ModelDownloads
import dev.pocketlm.download
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch

/** Where one catalog model stands on this phone. */
sealed interface ModelState {
    /** Not on the phone. */
    data object Available : ModelState

    /** Downloading ([paused] while paused); [total] is null until the server says. */
    data class Downloading(val downloaded: Long, val total: Long?, val paused: Boolean) : ModelState

    /** On the phone, verified, ready to load from [path]. */
    data class Installed(val path: String) : ModelState

    /** The last download failed; the part is kept, so downloading again resumes. */
    data class Failed(val message: String) : ModelState
}

/** One row of the model screen: a catalog entry, whether the planner says it fits, and its state. */
data class ModelRow(
    val id: String,
    val name: String,
    val downloadBytes: Long?,
    val fits: Boolean,
    /** Why it does not fit (or what the planner had to give up), for the row's subtitle. */
    val note: String?,
    val state: ModelState,
)

/**
 * The model screen: catalog entries with fit-for-this-phone from the memory
 * planner (for [budgetBytes] and [contextLength]), and downloads with progress,
 * pause, resume, cancel and delete. Work runs in [scope] (the Android
 * `viewModelScope`); nothing here blocks the caller.
 */
class ModelsViewModel(
    private val scope: CoroutineScope,
    private val catalog: ModelCatalog,
    private val downloads: ModelDownloads,
    private val budgetBytes: Long,
    private val contextLength: Int,
) {
    private val state = MutableStateFlow<List<ModelRow>>(emptyList())
    private val running = mutableMapOf<String, Pair<dev.pocketlm.Download, Job>>()

    /** The rows, in catalog order. */
    val rows: StateFlow<List<ModelRow>> = state.asStateFlow()

    /** Reads the catalog, the planner's verdicts and what is installed. */
    fun refresh(): Job = scope.launch {
        val installed = downloads.installed().associateBy { it.fileName }
        val verdicts = catalog.recommend(budgetBytes, contextLength).associateBy { it.id }
        state.value = catalog.entries.map { entry ->
            val verdict = verdicts[entry.id]
            val current = state.value.firstOrNull { it.id == entry.id }?.state
            val modelState = installed[entry.file.fileName]?.let { ModelState.Installed(it.path) }
                ?: current?.takeIf { it is ModelState.Downloading || it is ModelState.Failed }
                ?: ModelState.Available
            ModelRow(entry.id, entry.name, verdict?.downloadBytes, verdict?.fits ?: false, verdict?.reason, modelState)
        }
    }

    /** Starts (or resumes after a failure) downloading [id]. */
    fun download(id: String) {
        val entry = catalog[id] ?: return
        if (running.containsKey(id)) return
        val download = downloads.download(entry)
        set(id, ModelState.Downloading(0, entry.file.size, paused = false))
        val job = scope.launch {
            try {
                download.events.collect { event ->
                    when (event) {
                        is DownloadEvent.Progress -> set(id) { old ->
                            val paused = (old as? ModelState.Downloading)?.paused ?: false
                            ModelState.Downloading(event.progress.downloaded, event.progress.total, paused)
                        }
                        is DownloadEvent.Done -> set(id, ModelState.Installed(event.model.path))
                    }
                }
            } catch (e: kotlinx.coroutines.CancellationException) {
                throw e
            } catch (e: Exception) {
                set(id, ModelState.Failed(e.message ?: e.toString()))
            } finally {
                // Only this download's entry: a new download of [id] may have started after a cancel.
                if (running[id]?.first === download) running.remove(id)
            }
        }
        running[id] = download to job
    }

    /** Pauses [id]'s download (the connection closes; the part stays). */
    fun pause(id: String) {
        running[id]?.first?.pause() ?: return
        set(id) { old -> (old as? ModelState.Downloading)?.copy(paused = true) ?: old }
    }

    /** Resumes [id]'s paused download from the byte it reached. */
    fun resume(id: String) {
        running[id]?.first?.resume() ?: return
        set(id) { old -> (old as? ModelState.Downloading)?.copy(paused = false) ?: old }
    }

    /** Cancels [id]'s download and deletes what it fetched. */
    fun cancel(id: String): Job = scope.launch {
        running.remove(id)?.second?.also { it.cancel() }?.join()
        catalog[id]?.let { downloads.delete(it.file.fileName) }
        set(id, ModelState.Available)
    }

    /** Deletes installed model [id] from the phone. */
    fun delete(id: String): Job = scope.launch {
        catalog[id]?.let { downloads.delete(it.file.fileName) }
        set(id, ModelState.Available)
    }

    private fun set(id: String, modelState: ModelState) = set(id) { modelState }

    private fun set(id: String, change: (ModelState) -> ModelState) =
        state.update { rows -> rows.map { if (it.id == id) it.copy(state = change(it.state)) else it } }
}
