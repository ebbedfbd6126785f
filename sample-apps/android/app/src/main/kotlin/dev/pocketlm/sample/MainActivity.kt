package dev.pocketlm.sample

import android.app.ActivityManager
import android.app.Application
import android.content.ComponentCallbacks2
import android.content.Context
import android.os.Build
import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.enableEdgeToEdge
import androidx.activity.viewModels
import androidx.compose.foundation.isSystemInDarkTheme
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.WindowInsets
import androidx.compose.foundation.layout.consumeWindowInsets
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.padding
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.automirrored.filled.List
import androidx.compose.material.icons.filled.Email
import androidx.compose.material.icons.filled.Settings
import androidx.compose.material3.Icon
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.NavigationBar
import androidx.compose.material3.NavigationBarItem
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Text
import androidx.compose.material3.darkColorScheme
import androidx.compose.material3.dynamicDarkColorScheme
import androidx.compose.material3.dynamicLightColorScheme
import androidx.compose.material3.lightColorScheme
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.saveable.rememberSaveableStateHolder
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.vector.ImageVector
import androidx.compose.ui.platform.LocalContext
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewModelScope
import dev.pocketlm.ModelCatalog
import dev.pocketlm.ModelDownloads
import dev.pocketlm.sample.state.ChatViewModel
import dev.pocketlm.sample.state.ConversationStore
import dev.pocketlm.sample.state.ModelsViewModel
import dev.pocketlm.sample.state.SettingsViewModel
import dev.pocketlm.sample.ui.ChatScreen
import dev.pocketlm.sample.ui.ModelsScreen
import dev.pocketlm.sample.ui.SettingsScreen
import java.io.File

/**
 * Owns the app's plain view models (dev.pocketlm.sample.state) for as long as
 * the activity's ViewModelStore lives, running their work in [viewModelScope].
 * Everything the app does is in those view models; this class only wires them.
 */
class AppViewModel(application: Application) : AndroidViewModel(application) {
    private val files = application.filesDir
    private val catalog = ModelCatalog.builtin()
    private val downloads = ModelDownloads(File(files, "models").path)

    val settings = SettingsViewModel(File(files, "settings.json"), KeystoreSecretStore(application))
    val conversations = ConversationStore(File(files, "conversations"))
    val chat = ChatViewModel(viewModelScope, conversations, settings.settings, settings::cloudKey)

    /** The most this phone should give a model: 40% of its RAM, at most 8 GiB. */
    val deviceBudgetBytes: Long = deviceBudget(application)

    /**
     * The Models screen's "fits" verdicts use what a load will get: the settings'
     * memory budget, capped by the phone, at the settings' context length (both
     * as they were at start; ModelsViewModel takes them once).
     */
    val models = ModelsViewModel(
        scope = viewModelScope,
        catalog = catalog,
        downloads = downloads,
        budgetBytes = minOf(deviceBudgetBytes, settings.settings.value.memoryBudgetMb.toLong() shl 20),
        contextLength = settings.settings.value.contextLength,
    )

    init {
        models.refresh()
        chat.resumeLast() // after the system killed the app: the model and conversation that were on screen
    }

    override fun onCleared() {
        chat.close()
        downloads.close()
        catalog.close()
    }

    private companion object {
        const val MAX_BUDGET_BYTES = 8L shl 30

        fun deviceBudget(context: Context): Long {
            val info = ActivityManager.MemoryInfo()
            context.getSystemService(ActivityManager::class.java).getMemoryInfo(info)
            return minOf(info.totalMem / 5 * 2, MAX_BUDGET_BYTES)
        }
    }
}

class MainActivity : ComponentActivity() {
    private val app: AppViewModel by viewModels()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        enableEdgeToEdge()
        setContent {
            PocketLMTheme { PocketLMApp(app) }
        }
    }

    override fun onStart() {
        super.onStart()
        app.chat.onForeground() // reloads a model unloaded under memory pressure; otherwise nothing
    }

    override fun onStop() {
        super.onStop()
        // A rotation stops and restarts the activity too; only a real leave stops the answer.
        if (!isChangingConfigurations) app.chat.onBackground()
    }

    @Suppress("DEPRECATION") // RUNNING_LOW/CRITICAL: deprecated in API 35, still sent up to API 33
    override fun onTrimMemory(level: Int) {
        super.onTrimMemory(level)
        val pressed = level >= ComponentCallbacks2.TRIM_MEMORY_BACKGROUND ||
            level == ComponentCallbacks2.TRIM_MEMORY_RUNNING_LOW ||
            level == ComponentCallbacks2.TRIM_MEMORY_RUNNING_CRITICAL
        if (pressed) app.chat.onMemoryPressure()
    }
}

private enum class Tab(val label: String, val icon: ImageVector) {
    Chat("Chat", Icons.Filled.Email),
    Models("Models", Icons.AutoMirrored.Filled.List),
    Settings("Settings", Icons.Filled.Settings),
}

@Composable
private fun PocketLMApp(app: AppViewModel) {
    var tab by rememberSaveable { mutableStateOf(Tab.Chat) }
    val chatUi by app.chat.ui.collectAsStateWithLifecycle()
    // Keeps each screen's saved UI state (the chat draft, half-typed settings)
    // while another tab is shown, and across rotation and process death.
    val saved = rememberSaveableStateHolder()
    Scaffold(
        contentWindowInsets = WindowInsets(0, 0, 0, 0), // each screen's own Scaffold handles the status bar
        bottomBar = {
            NavigationBar {
                Tab.entries.forEach { t ->
                    NavigationBarItem(
                        selected = t == tab,
                        onClick = { tab = t },
                        icon = { Icon(t.icon, contentDescription = null) },
                        label = { Text(t.label) },
                    )
                }
            }
        },
    ) { padding ->
        Box(Modifier.fillMaxSize().padding(padding).consumeWindowInsets(padding)) {
            saved.SaveableStateProvider(tab.name) {
                when (tab) {
                    Tab.Chat -> ChatScreen(app.chat, app.conversations)
                    Tab.Models -> ModelsScreen(app.models, inUse = chatUi.modelPath, onUse = { path ->
                        app.chat.load(path)
                        tab = Tab.Chat
                    })
                    Tab.Settings -> SettingsScreen(app.settings, app.deviceBudgetBytes)
                }
            }
        }
    }
}

@Composable
private fun PocketLMTheme(content: @Composable () -> Unit) {
    val dark = isSystemInDarkTheme()
    val colors = when {
        Build.VERSION.SDK_INT >= Build.VERSION_CODES.S -> {
            val context = LocalContext.current
            if (dark) dynamicDarkColorScheme(context) else dynamicLightColorScheme(context)
        }
        dark -> darkColorScheme()
        else -> lightColorScheme()
    }
    MaterialTheme(colorScheme = colors, content = content)
}
