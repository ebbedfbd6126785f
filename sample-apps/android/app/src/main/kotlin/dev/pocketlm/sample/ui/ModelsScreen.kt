package dev.pocketlm.sample.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.PaddingValues
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.consumeWindowInsets
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.filled.Refresh
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.FilledTonalButton
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Text
import androidx.compose.material3.TopAppBar
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.pocketlm.sample.state.ModelRow
import dev.pocketlm.sample.state.ModelState
import dev.pocketlm.sample.state.ModelsViewModel
import java.util.Locale

/** The built-in catalog: whether each model fits this phone, and its download. */
@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun ModelsScreen(models: ModelsViewModel, inUse: String?, onUse: (path: String) -> Unit) {
    val rows by models.rows.collectAsStateWithLifecycle()
    Scaffold(
        topBar = {
            TopAppBar(
                title = { Text("Models") },
                actions = {
                    IconButton(onClick = { models.refresh() }) { Icon(Icons.Filled.Refresh, contentDescription = "Refresh") }
                },
            )
        },
    ) { inner ->
        LazyColumn(
            contentPadding = PaddingValues(12.dp),
            verticalArrangement = Arrangement.spacedBy(12.dp),
            modifier = Modifier.fillMaxSize().padding(inner).consumeWindowInsets(inner),
        ) {
            items(rows, key = { it.id }) { row -> ModelCard(row, models, inUse, onUse) }
        }
    }
}

@Composable
private fun ModelCard(row: ModelRow, models: ModelsViewModel, inUse: String?, onUse: (String) -> Unit) {
    Card(Modifier.fillMaxWidth()) {
        Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(6.dp)) {
            Text(row.name, style = MaterialTheme.typography.titleMedium)
            Text(
                listOfNotNull(row.downloadBytes?.let(::formatBytes), if (row.fits) "fits this phone" else "does not fit").joinToString(" · "),
                style = MaterialTheme.typography.bodySmall,
                color = if (row.fits) MaterialTheme.colorScheme.onSurfaceVariant else MaterialTheme.colorScheme.error,
            )
            row.note?.let { Text(it, style = MaterialTheme.typography.bodySmall, color = MaterialTheme.colorScheme.onSurfaceVariant) }

            when (val state = row.state) {
                ModelState.Available -> Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                    Button(onClick = { models.download(row.id) }) { Text("Download") }
                }
                is ModelState.Downloading -> {
                    val total = state.total
                    if (total != null && total > 0) {
                        LinearProgressIndicator(
                            progress = { (state.downloaded.toFloat() / total).coerceIn(0f, 1f) },
                            modifier = Modifier.fillMaxWidth(),
                        )
                    } else if (!state.paused) {
                        LinearProgressIndicator(Modifier.fillMaxWidth())
                    }
                    Text(
                        (if (state.paused) "Paused · " else "Downloading · ") + formatBytes(state.downloaded) + (total?.let { " of " + formatBytes(it) } ?: ""),
                        style = MaterialTheme.typography.bodySmall,
                    )
                    Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                        if (state.paused) {
                            FilledTonalButton(onClick = { models.resume(row.id) }) { Text("Resume") }
                        } else {
                            FilledTonalButton(onClick = { models.pause(row.id) }) { Text("Pause") }
                        }
                        OutlinedButton(onClick = { models.cancel(row.id) }) { Text("Cancel") }
                    }
                }
                is ModelState.Installed -> Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                    // The model in use can be neither loaded again nor deleted under the chat.
                    val used = java.io.File(state.path).absolutePath == inUse?.let { java.io.File(it).absolutePath }
                    Button(onClick = { onUse(state.path) }, enabled = !used) { Text(if (used) "In use" else "Use") }
                    OutlinedButton(onClick = { models.delete(row.id) }, enabled = !used) { Text("Delete") }
                }
                is ModelState.Failed -> {
                    Text(state.message, style = MaterialTheme.typography.bodySmall, color = MaterialTheme.colorScheme.error)
                    Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                        Button(onClick = { models.download(row.id) }) { Text("Resume download") }
                        OutlinedButton(onClick = { models.cancel(row.id) }) { Text("Discard") }
                    }
                }
            }
        }
    }
}

private fun formatBytes(bytes: Long): String = when {
    bytes >= 1L shl 30 -> String.format(Locale.ROOT, "%.2f GB", bytes / (1L shl 30).toDouble())
    else -> String.format(Locale.ROOT, "%.0f MB", bytes / (1L shl 20).toDouble())
}
