package dev.pocketlm.sample.ui

import android.text.format.DateUtils
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.PaddingValues
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.consumeWindowInsets
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.imePadding
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.size
import androidx.compose.foundation.layout.widthIn
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.foundation.lazy.itemsIndexed
import androidx.compose.foundation.shape.RoundedCornerShape
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.automirrored.filled.Send
import androidx.compose.material.icons.filled.Add
import androidx.compose.material.icons.filled.Menu
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Button
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.DrawerValue
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.HorizontalDivider
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.ModalDrawerSheet
import androidx.compose.material3.ModalNavigationDrawer
import androidx.compose.material3.NavigationDrawerItem
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Scaffold
import androidx.compose.material3.SnackbarDuration
import androidx.compose.material3.SnackbarHost
import androidx.compose.material3.SnackbarHostState
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.material3.TopAppBar
import androidx.compose.material3.rememberDrawerState
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.style.TextOverflow
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.pocketlm.ffi.Role
import dev.pocketlm.sample.state.AnswerStats
import dev.pocketlm.sample.state.ChatViewModel
import dev.pocketlm.sample.state.ConversationStore
import dev.pocketlm.sample.state.ConversationSummary
import dev.pocketlm.sample.state.ModelStatus
import dev.pocketlm.sample.state.UiMessage
import kotlinx.coroutines.launch
import java.util.Locale
import kotlin.math.roundToInt

/** The chat: conversation drawer, streamed answers with their figures, stop, regenerate, edit, and the input. */
@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun ChatScreen(chat: ChatViewModel, store: ConversationStore) {
    val ui by chat.ui.collectAsStateWithLifecycle()
    val ready = ui.model is ModelStatus.Ready
    // What ChatViewModel.send/regenerate/editLast accept; otherwise they return false.
    val canAnswer = ui.canSend

    // The user's text lives here until it is sent: kept across tabs (the
    // SaveableStateProvider around this screen), rotation and process death.
    var draft by rememberSaveable { mutableStateOf("") }
    var editing by rememberSaveable { mutableStateOf<String?>(null) }

    val drawer = rememberDrawerState(DrawerValue.Closed)
    val scope = rememberCoroutineScope()
    var conversations by remember { mutableStateOf(emptyList<ConversationSummary>()) }
    LaunchedEffect(drawer.isOpen) {
        if (drawer.isOpen) conversations = store.list()
    }

    // Text whose request failed before it joined the conversation comes back to the input.
    LaunchedEffect(ui.unsent) {
        chat.takeUnsent()?.let { text -> if (draft.isBlank()) draft = text }
    }

    // ChatUiState.error is "to show once": a snackbar per new error.
    val snackbar = remember { SnackbarHostState() }
    var shownError by rememberSaveable { mutableStateOf<String?>(null) }
    LaunchedEffect(ui.error) {
        val error = ui.error
        if (error == null) {
            shownError = null
        } else if (error != shownError) {
            shownError = error
            snackbar.showSnackbar(error, withDismissAction = true, duration = SnackbarDuration.Long)
        }
    }

    ModalNavigationDrawer(
        drawerState = drawer,
        drawerContent = {
            ModalDrawerSheet {
                Text("Conversations", style = MaterialTheme.typography.titleMedium, modifier = Modifier.padding(16.dp))
                NavigationDrawerItem(
                    label = { Text("New conversation") },
                    icon = { Icon(Icons.Filled.Add, contentDescription = null) },
                    selected = false,
                    onClick = {
                        if (ready) chat.newConversation()
                        scope.launch { drawer.close() }
                    },
                    modifier = Modifier.padding(horizontal = 12.dp),
                )
                HorizontalDivider(Modifier.padding(vertical = 8.dp))
                if (!ready) {
                    Text(
                        "Load a model (Models tab) to open a conversation.",
                        style = MaterialTheme.typography.bodySmall,
                        modifier = Modifier.padding(horizontal = 16.dp, vertical = 4.dp),
                    )
                }
                LazyColumn {
                    items(conversations, key = { it.id }) { c ->
                        NavigationDrawerItem(
                            label = {
                                Column {
                                    Text(c.title, maxLines = 1, overflow = TextOverflow.Ellipsis)
                                    Text(
                                        c.problem ?: "${c.messages} messages · ${DateUtils.getRelativeTimeSpanString(c.savedAtMillis)}",
                                        style = MaterialTheme.typography.bodySmall,
                                        maxLines = 2,
                                        overflow = TextOverflow.Ellipsis,
                                    )
                                }
                            },
                            selected = c.id == ui.conversationId,
                            onClick = {
                                if (ready && c.problem == null) {
                                    chat.open(c.id)
                                    scope.launch { drawer.close() }
                                }
                            },
                            modifier = Modifier.padding(horizontal = 12.dp),
                        )
                    }
                }
            }
        },
    ) {
        Scaffold(
            topBar = {
                TopAppBar(
                    title = {
                        Column {
                            Text("Chat")
                            Text(
                                ui.model.label(),
                                style = MaterialTheme.typography.bodySmall,
                                maxLines = 1,
                                overflow = TextOverflow.Ellipsis,
                            )
                        }
                    },
                    navigationIcon = {
                        IconButton(onClick = { scope.launch { drawer.open() } }) {
                            Icon(Icons.Filled.Menu, contentDescription = "Conversations")
                        }
                    },
                    actions = {
                        if (ui.model == ModelStatus.Unloaded) {
                            TextButton(onClick = { chat.onForeground() }) { Text("Reload") }
                        }
                        IconButton(onClick = { chat.newConversation() }, enabled = ready) {
                            Icon(Icons.Filled.Add, contentDescription = "New conversation")
                        }
                    },
                )
            },
            snackbarHost = { SnackbarHost(snackbar) },
        ) { inner ->
            Column(Modifier.fillMaxSize().padding(inner).consumeWindowInsets(inner).imePadding()) {
                (ui.model as? ModelStatus.Loading)?.let { loading ->
                    LinearProgressIndicator(progress = { loading.fraction }, modifier = Modifier.fillMaxWidth())
                }
                ui.restoredCachedTokens?.let { tokens ->
                    Text(
                        "Restored: $tokens tokens came back from the saved cache",
                        style = MaterialTheme.typography.labelSmall,
                        color = MaterialTheme.colorScheme.onSurfaceVariant,
                        modifier = Modifier.padding(horizontal = 16.dp, vertical = 4.dp),
                    )
                }
                Box(Modifier.weight(1f).fillMaxWidth()) {
                    if (ui.messages.isEmpty() && !ui.streaming) {
                        Text(
                            emptyHint(ui.model),
                            style = MaterialTheme.typography.bodyMedium,
                            color = MaterialTheme.colorScheme.onSurfaceVariant,
                            modifier = Modifier.align(Alignment.Center).padding(32.dp),
                        )
                    } else {
                        Messages(
                            messages = ui.messages,
                            streaming = ui.streaming,
                            canAnswer = canAnswer,
                            onRegenerate = { chat.regenerate() },
                            onEditLast = { editing = ui.messages.lastOrNull { it.role == Role.USER }?.text.orEmpty() },
                        )
                    }
                }
                Row(
                    Modifier.fillMaxWidth().padding(horizontal = 8.dp, vertical = 6.dp),
                    verticalAlignment = Alignment.CenterVertically,
                ) {
                    OutlinedTextField(
                        value = draft,
                        onValueChange = { draft = it },
                        placeholder = { Text(if (ready) "Message" else "No model loaded") },
                        maxLines = 6,
                        modifier = Modifier.weight(1f),
                    )
                    if (ui.streaming) {
                        Button(onClick = { chat.stop() }, modifier = Modifier.padding(start = 8.dp)) { Text("Stop") }
                    } else {
                        IconButton(
                            onClick = {
                                if (chat.send(draft.trim())) draft = "" // only cleared when the view model takes it
                            },
                            enabled = canAnswer && draft.isNotBlank(),
                        ) {
                            Icon(Icons.AutoMirrored.Filled.Send, contentDescription = "Send")
                        }
                    }
                }
            }
        }
    }

    editing?.let { text ->
        AlertDialog(
            onDismissRequest = { editing = null },
            title = { Text("Edit last message") },
            text = {
                OutlinedTextField(value = text, onValueChange = { editing = it }, modifier = Modifier.fillMaxWidth())
            },
            confirmButton = {
                TextButton(
                    onClick = {
                        if (chat.editLast(text.trim())) editing = null
                    },
                    enabled = canAnswer && text.isNotBlank(),
                ) { Text("Send") }
            },
            dismissButton = { TextButton(onClick = { editing = null }) { Text("Cancel") } },
        )
    }
}

/** The bubbles, newest at the bottom; the list stays pinned to the bottom while an answer streams in. */
@Composable
private fun Messages(
    messages: List<UiMessage>,
    streaming: Boolean,
    canAnswer: Boolean,
    onRegenerate: () -> Unit,
    onEditLast: () -> Unit,
) {
    LazyColumn(
        reverseLayout = true, // item 0 is the bottom one
        contentPadding = PaddingValues(12.dp),
        verticalArrangement = Arrangement.spacedBy(8.dp),
        modifier = Modifier.fillMaxSize(),
    ) {
        item {
            when {
                streaming && messages.lastOrNull()?.role != Role.ASSISTANT -> {
                    CircularProgressIndicator(Modifier.padding(4.dp).size(20.dp), strokeWidth = 2.dp)
                }
                !streaming && messages.isNotEmpty() -> Row(horizontalArrangement = Arrangement.spacedBy(4.dp)) {
                    TextButton(onClick = onRegenerate, enabled = canAnswer) { Text("Regenerate") }
                    TextButton(onClick = onEditLast, enabled = canAnswer && messages.any { it.role == Role.USER }) {
                        Text("Edit last")
                    }
                }
            }
        }
        itemsIndexed(messages.asReversed()) { fromEnd, message ->
            Bubble(message, streaming = streaming && fromEnd == 0 && message.role == Role.ASSISTANT)
        }
    }
}

@Composable
private fun Bubble(message: UiMessage, streaming: Boolean) {
    val mine = message.role == Role.USER
    Column(Modifier.fillMaxWidth(), horizontalAlignment = if (mine) Alignment.End else Alignment.Start) {
        Surface(
            color = if (mine) MaterialTheme.colorScheme.primaryContainer else MaterialTheme.colorScheme.surfaceVariant,
            shape = RoundedCornerShape(16.dp),
            modifier = Modifier.widthIn(max = 320.dp),
        ) {
            Text(
                if (streaming) message.text + " ▍" else message.text,
                modifier = Modifier.padding(horizontal = 12.dp, vertical = 8.dp),
            )
        }
        message.stats?.let { StatsLine(it) }
    }
}

/** TTFT, decode speed, cache reuse and where it ran, under an answer. */
@Composable
private fun StatsLine(stats: AnswerStats) {
    Row(
        verticalAlignment = Alignment.CenterVertically,
        horizontalArrangement = Arrangement.spacedBy(6.dp),
        modifier = Modifier.padding(start = 4.dp, top = 4.dp),
    ) {
        Surface(
            color = if (stats.onDevice) MaterialTheme.colorScheme.tertiaryContainer else MaterialTheme.colorScheme.secondaryContainer,
            shape = RoundedCornerShape(50),
        ) {
            Text(
                if (stats.onDevice) "device" else "cloud",
                style = MaterialTheme.typography.labelSmall,
                modifier = Modifier.padding(horizontal = 6.dp, vertical = 1.dp),
            )
        }
        val ended = stats.stopReason.takeIf { it != "eos" && it != "stop_sequence" }?.let { " · $it" }.orEmpty()
        Text(
            "TTFT ${stats.ttftMs.roundToInt()} ms · ${String.format(Locale.ROOT, "%.1f", stats.tokensPerSecond)} tok/s" +
                " · ${stats.promptTokensReused} cached" + ended,
            style = MaterialTheme.typography.labelSmall,
            color = MaterialTheme.colorScheme.onSurfaceVariant,
        )
    }
}

private fun ModelStatus.label(): String = when (this) {
    ModelStatus.None -> "No model loaded"
    is ModelStatus.Loading -> "Loading… ${(fraction * 100).roundToInt()}%"
    is ModelStatus.Ready -> name
    ModelStatus.Unloaded -> "Unloaded to free memory"
    is ModelStatus.Failed -> "Load failed"
}

private fun emptyHint(model: ModelStatus): String = when (model) {
    ModelStatus.None -> "Download a model on the Models tab and tap Use."
    is ModelStatus.Loading -> "Loading the model…"
    is ModelStatus.Ready -> "Ask anything. It runs on this phone."
    ModelStatus.Unloaded -> "The model was unloaded to free memory. Tap Reload."
    is ModelStatus.Failed -> model.message
}
