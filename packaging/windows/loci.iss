; Inno Setup 6 script for Loci's Windows installer; packaging/build.py passes the /D defines.
; Per-user install by default (no admin prompt); user data lives in %LOCALAPPDATA%\loci and is
; never touched by the uninstaller.
#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\loci"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif
#ifndef IconFile
  #define IconFile "..\..\assets\icons\loci.ico"
#endif

[Setup]
AppId={{6C0E2B4A-51F3-4C1B-9E0B-7A4C1D2E3F40}
AppName=Loci
AppVersion={#AppVersion}
AppVerName=Loci {#AppVersion}
AppPublisher=Loci developers
DefaultDirName={autopf}\Loci
DefaultGroupName=Loci
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=Loci-{#AppVersion}-windows-x64-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\loci-gui.exe
Compression=lzma2/fast
SolidCompression=no
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Loci"; Filename: "{app}\loci-gui.exe"
Name: "{group}\Uninstall Loci"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Loci"; Filename: "{app}\loci-gui.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\loci-gui.exe"; Description: "{cm:LaunchProgram,Loci}"; Flags: nowait postinstall skipifsilent
