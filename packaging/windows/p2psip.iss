; Inno Setup 6 script: a Windows installer around the PyInstaller folder.
; NOT BUILT ON THESE MACHINES (Linux only); a recipe, see packaging/README.md.
;
; On Windows, from the repository root, with the project and PyInstaller installed
; (py -3.11 -m pip install -e ".[package]"):
;   py -3.11 -m PyInstaller --noconfirm --distpath dist --workpath build\pyinstaller packaging\p2psip.spec
;   iscc /DAppVersion=0.1.0 packaging\windows\p2psip.iss
; gives dist\p2psip-phone-0.1.0-setup.exe. AppVersion is pyproject's version (the spec reads
; the same); packaging/windows/build.ps1 passes it. The spec makes build\icons\p2psip-phone.ico.

#ifndef AppVersion
  #error Pass the version from pyproject.toml: iscc /DAppVersion=X.Y.Z p2psip.iss
#endif
#define AppName "P2PSIP Phone"
#define Root "..\.."

[Setup]
; A fixed AppId keeps upgrades in place (same id = same product).
AppId={{7B0F3E52-6C1D-4B7A-9E21-5D4C2A8F1E90}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=P2PSIP Phone developers
DefaultDirName={autopf}\P2PSIP Phone
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
OutputDir={#Root}\dist
OutputBaseFilename=p2psip-phone-{#AppVersion}-setup
SetupIconFile={#Root}\build\icons\p2psip-phone.ico
UninstallDisplayIcon={app}\p2psip.exe
Compression=lzma2/max
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; Per-user or per-machine: asked at start; no admin rights needed for a per-user install.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ChangesEnvironment=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add the p2psip command to PATH"; Flags: unchecked

[Files]
; The whole one-folder build (p2psip.exe + _internal\).
Source: "{#Root}\dist\p2psip-phone\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
; The console program opens its window with `gui`; the shortcut runs it minimised so only
; the Qt window shows.
Name: "{group}\{#AppName}"; Filename: "{app}\p2psip.exe"; Parameters: "gui"; IconFilename: "{app}\p2psip.exe"; Flags: runminimized
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\p2psip.exe"; Parameters: "gui"; IconFilename: "{app}\p2psip.exe"; Flags: runminimized; Tasks: desktopicon

[Registry]
Root: HKA; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\p2psip.exe"; Parameters: "gui"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent runminimized

; Users' profiles (%LOCALAPPDATA%\p2psip-phone) are theirs: the uninstaller removes only
; {app}, so there is no [UninstallDelete] section.

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Paths: string;
begin
  if not RegQueryStringValue(HKA, 'Environment', 'Path', Paths) then
    Paths := '';
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;
