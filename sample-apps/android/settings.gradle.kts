// The PocketLM sample app. The library comes from source: android/ is an
// included build (a composite build), so `dev.pocketlm:pocketlm-android` below
// resolves to its project (group "dev.pocketlm", name = its rootProject.name in
// android/settings.gradle.kts). android/ keeps its own settings and plugin
// versions, which is why it is included as a build and not as a subproject.
// Run scripts/build-android.sh once first: it puts the native libraries and the
// generated bindings where android/build.gradle.kts looks for them.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "pocketlm-sample"
include(":app")
includeBuild("../../android")
