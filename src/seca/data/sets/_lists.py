"""Helpers shared by the data sets of this package, each used by more than one of them: reading the list files
archives ship (``read_list``, ``text_lines``), the split a benchmark takes from listed images (``listed_split``,
``listed_in_folders`` with ``lists_split``), C3Box's ``train/`` ``val/`` class folders (``c3box_split``,
``c3box_matched``, ``official_or_c3box``), the ``train/`` ``test/`` folders ``seca prepare`` writes
(``prepared``, ``prepared_split``) and ImageNet-1k's WordNet ids and CLIP names (``clip_imagenet_names``).

Private: the registry's discovery (``seca.registry.import_modules``) imports only the public modules of
``seca/data/sets/``, each one data set; this file registers none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ...config import DataConfig
from ...errors import SecaError
from ..images import CONTROL, ImageFiles, check_distinct_names, folder_split, list_images, shown
from .base import BenchmarkData, DataSet

OFFICIAL_SPLIT = "official train/test lists"
C3BOX_SPLIT = "C3Box train/val folders"

Item = tuple[Path, int]  # an image file and its class's place in the full class list


# ---- the files an archive ships ----------------------------------------------------------------------------------
WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")


def text_lines(path: Path, missing: str) -> list[tuple[int, str]]:
    """The non-empty lines of a list file, stripped, with their line numbers (as an editor counts them: LF, CRLF or
    CR ends a line; a leading BOM is no part of the first): every list file of a data set is read here. A missing,
    unreadable (not UTF-8) or empty file, or a line holding a control character, is one line naming the file (and
    the line); ``missing`` says where the file comes from, or what it should hold."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SecaError(f"{path} is missing: {missing}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SecaError(f"cannot read {path} ({type(e).__name__}: {shown(str(e), 120)}): {missing}") from None
    lines = []
    for n, line in enumerate(text.split("\n"), 1):
        bad = CONTROL.search(line)
        if bad is not None:
            raise SecaError(
                f"{path}, line {n}: '{shown(line)}' holds the control character {shown(bad.group())}; a list file is "
                "lines of text"
            )
        if line.strip():
            lines.append((n, line.strip()))
    if not lines:
        raise SecaError(f"{path} holds no lines: {missing}")
    return lines


def read_list(path: Path, what: str) -> list[tuple[int, str, str]]:
    """The lines ``<key> <value>`` of the list file ``path`` (:func:`text_lines`) as ``(line number, key, value)``,
    the value being the rest of the line; ``what`` describes a line (``<image id> <class id>``). A missing,
    unreadable or malformed file is one line naming it (and the line)."""
    triples = []
    for number, line in text_lines(path, f"the data set's lists must be as distributed, lines '{what}'"):
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise SecaError(f"{path}, line {number}: expected '{what}', got '{shown(line)}'")
        triples.append((number, parts[0], parts[1].strip()))
    return triples


def number(text: str, path: Path, what: str, line: int | None = None) -> int:
    """``text`` as a whole number (ASCII digits, at most 18 of them), else one line saying which list (and line)
    holds what."""
    if WHOLE_NUMBER.fullmatch(text) is None:
        where = f"{path}, line {line}" if line is not None else f"{path}"
        raise SecaError(f"{where}: '{shown(text, 40)}' is not a number ({what})")
    return int(text)


def inside(text: str, path: Path, line: int, what: str = "a path inside the data set's folder") -> list[str]:
    """The parts of ``text``, a path that line ``line`` of the list ``path`` names relative to a folder of the data set
    (``what`` it should be); one that could leave that folder (``..``, an absolute path) or names no file or folder
    (an empty or ``.`` part) is one line naming the list and the line."""
    parts = text.split("/")
    if any(part in ("", ".", "..") or "\\" in part for part in parts):
        raise SecaError(f"{path}, line {line}: '{shown(text)}' is not {what}")
    return parts


def spelling_key(name: str) -> str:
    """What identifies a class whatever its spelling: ``apple_pie``, ``Apple Pie`` and ``applepie`` are one."""
    return name.replace("_", "").replace(" ", "").casefold()


def folder_name(text: str) -> str:
    """A class folder's name as a class name: underscores read as spaces, spaces collapsed."""
    return " ".join(text.replace("_", " ").split())


def is_folder(path: Path) -> bool:
    """``path`` is a folder: where a list names a class folder, a name longer than the file system allows names none
    (``Path.is_dir`` raises on it)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def files_in(folder: Path) -> set[str]:
    """The names of the files directly in ``folder`` (none if it is absent): one listing instead of a look-up per
    image, so a folder holding part of a data set costs no more to check than a whole one."""
    if not is_folder(folder):
        return set()
    return {p.name for p in folder.iterdir() if p.is_file()}


# ---- the folders seca prepare writes -----------------------------------------------------------------------------
def prepared(path: Path) -> bool:
    """``path`` holds ``train/`` and ``test/``, as ``seca prepare`` writes them."""
    return (path / "train").is_dir() and (path / "test").is_dir()


def prepared_split(root: Path) -> str:
    """How ``root``'s train/ and test/ were separated, from the manifest ``seca prepare`` wrote beside them."""
    try:
        split = json.loads((root / "manifest.json").read_text(encoding="utf-8"))["split"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return "train/test folders"
    if not isinstance(split, dict):
        return "train/test folders"
    if "seed" in split:
        return f"seca prepare seed {shown(str(split['seed']), 40)}, 80/20"
    return f"seca prepare split file {shown(str(split.get('split_file', '?')), 80)}"


# ---- a benchmark from listed images ------------------------------------------------------------------------------
def listed_split(
    dataset: DataSet,
    data: DataConfig,
    official: Sequence[str],
    train: Sequence[Item],
    test: Sequence[Item],
    *,
    split: str,
    where: Path,
    total: int | None = None,
    listed: int | None = None,
) -> BenchmarkData:
    """The benchmark of the images ``train`` and ``test`` (``(file, place in official)``, files that exist), whose
    classes are ``official`` (the full list, in its order). The classes present are kept, their ids their places in
    that order (0..K-1); a class with images in one split only is refused; names come from
    :meth:`DataSet.class_names` of the full list; a folder holding part of the classes (of ``total``, default all of
    ``official``), or part of the ``listed`` images, says so in ``notes``."""
    in_train, in_test = {k for _, k in train}, {k for _, k in test}
    present = sorted(in_train | in_test)
    if not present:
        raise SecaError(f"{where} holds none of the images of {dataset.name}; {dataset.obtain}")
    for k in present:
        if k not in in_test or k not in in_train:
            has, lacks = ("training", "test") if k not in in_test else ("test", "training")
            raise SecaError(
                f"{dataset.name}: the class '{shown(official[k], 60)}' has {has} images but no {lacks} images in "
                f"{where}; add its {lacks} images or remove the class"
            )
    names, label = dataset.class_names(data, official)
    ids = {k: i for i, k in enumerate(present)}
    kept = [names[k] for k in present]

    def images(items: Sequence[Item]) -> ImageFiles:
        return ImageFiles([p for p, _ in items], [ids[k] for _, k in items], kept, None, data.max_pixels)

    total = len(official) if total is None else total
    notes = [dataset.subset_note(len(present), total)]
    if len(present) >= total and listed is not None:
        notes.append(dataset.subset_note(len(train) + len(test), listed, "images"))
    return BenchmarkData(images(train), images(test), kept, split, label, [n for n in notes if n])


@dataclass
class FolderImages:
    """The images of official lists found in class folders (:func:`listed_in_folders`)."""

    present: list[int]  # the classes that have a folder (places in the full class list), sorted
    splits: dict[str, tuple[list[Path], list[int]]]  # split -> (image files, class ids), in the order read
    found: int  # images found
    listed: int  # images the lists name, of the classes present


def listed_in_folders(
    lists: Iterable[tuple[str, Iterable[tuple[int, str]]]],
    folders: Mapping[int, Path],
    none: str,
    lacking: Callable[[str, int], str] | None = None,
) -> FolderImages:
    """The images that official lists name, found in the class folders ``folders`` (class -> its folder, the classes
    present; ``none`` is the error when there are none): for each ``(split, entries)`` of ``lists``, read in turn,
    entries being ``(class, file name)``, the files there and their class ids (the classes' places in sorted order).
    ``lacking(split, class)`` is the error when a class has no image of a split (checked as each split is read)."""
    if not folders:
        raise SecaError(none)
    present = sorted(folders)
    place = {k: i for i, k in enumerate(present)}
    on_disk = {k: {p.name for p in folder.iterdir()} for k, folder in folders.items()}
    images = FolderImages(present, {}, 0, 0)
    for split, entries in lists:
        files, targets = [], []
        for k, file in entries:
            if k in place:
                images.listed += 1
                if file in on_disk[k]:
                    files.append(folders[k] / file)
                    targets.append(place[k])
        images.found += len(files)
        if lacking is not None:
            have = set(targets)
            for i, k in enumerate(present):
                if i not in have:
                    raise SecaError(lacking(split, k))
        images.splits[split] = (files, targets)
    return images


def lists_split(
    dataset: DataSet,
    data: DataConfig,
    official: Sequence[str],
    images: FolderImages,
    *,
    split: str,
    what: str = "listed images",
) -> BenchmarkData:
    """The benchmark of :func:`listed_in_folders`'s ``images`` (train, then test) of the data set whose classes are
    ``official`` (the full list), named by :meth:`DataSet.class_names`; a folder holding part of the classes, or
    part of the listed images (``what``), says so in ``notes``."""
    all_names, label = dataset.class_names(data, official)
    names = [all_names[k] for k in images.present]
    notes = [
        dataset.subset_note(len(images.present), len(official)),
        dataset.subset_note(images.found, images.listed, what),
    ]
    train, test = images.splits.values()
    return BenchmarkData(
        ImageFiles(*train, names, None, data.max_pixels),
        ImageFiles(*test, names, None, data.max_pixels),
        names,
        split=split,
        names=label,
        notes=[n for n in notes if n],
    )


# ---- C3Box's train/ val/ class folders ---------------------------------------------------------------------------
def c3box_split(
    dataset: DataSet, data: DataConfig, folders: tuple[Path, Path], total: int, rule: Callable[[str], str]
) -> BenchmarkData:
    """C3Box's layout (``train/<class>/``, ``val/<class>/``, read by torchvision's ImageFolder): the class ids are the
    folders' places in sorted order, as C3Box's are, and the names the folder names by ``rule`` (the data set's
    own rule for its class names). ``total`` is the data set's number of classes (a folder holding fewer says so)."""
    train_dir, val_dir = folders
    names = sorted({p.name for d in folders for p in d.iterdir() if p.is_dir()})
    if len(names) > total:
        raise SecaError(
            f"{train_dir.parent} holds {len(names)} class folders under train/ and val/; {dataset.name} has {total}"
        )
    official = [rule(n) for n in names]
    check_distinct_names(official, f"the class folders in {train_dir.parent}")

    def items(split_dir: Path) -> list[Item]:
        return [
            (p, k) for k, n in enumerate(names) if (split_dir / n).is_dir() for p in list_images(split_dir / n, True)
        ]

    train, val = items(train_dir), items(val_dir)
    return listed_split(dataset, data, official, train, val, split=C3BOX_SPLIT, where=train_dir.parent, total=total)


def official_or_c3box(
    dataset: DataSet,
    data: DataConfig,
    official_layout: Callable[[Path], bool],
    official: Callable[[DataConfig, Path], BenchmarkData],
    total: int,
    rule: Callable[[str], str],
) -> BenchmarkData:
    """The data set in ``data.root`` (or the folder inside it) that is as distributed (``official_layout`` of it;
    ``official`` reads it) or C3Box's ``train/`` ``val/`` class folders (read by :func:`c3box_split` with ``total``
    and ``rule``); the official layout where a folder has both."""
    root = dataset.locate(data, lambda p: official_layout(p) or dataset.c3box_folders(p) is not None)
    folders = dataset.c3box_folders(root)
    if folders is not None and not official_layout(root):
        return c3box_split(dataset, data, folders, total, rule)
    return official(data, root)


def c3box_matched(
    dataset: DataSet,
    data: DataConfig,
    folders: tuple[Path, Path],
    classes: Sequence[str],
    official: Sequence[str],
    *,
    unknown: str,
    kind: str = "class",
    spelling: Callable[[str], str] = str,
    note: Callable[[list[int]], str | None] | None = None,
) -> BenchmarkData:
    """C3Box's ``train/<class>/`` and ``val/<class>/`` of a data set whose ``classes`` are known (``official``: their
    names): the folders numbered in sorted order (ImageFolder's, so C3Box's class ids and labels.json line up), each
    matched to a class whatever its spelling (:func:`spelling_key` of ``spelling`` of the class). A folder that is no
    class is ``{folder} is not {unknown}``; ``note`` of the classes found is the line a run prints (by default, when
    they are part of the classes)."""
    train_dir, val_dir = folders
    keys = {spelling_key(spelling(c)): k for k, c in enumerate(classes)}
    found = sorted(p.name for p in train_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    ids: list[int] = []
    for folder in found:
        k = keys.get(spelling_key(folder))
        if k is None:
            raise SecaError(f"{train_dir / folder} is not {unknown}; is data.root the right data set?")
        if k in ids:
            raise SecaError(f"two folders of {train_dir} name the {kind} '{classes[k]}'")
        ids.append(k)
    extra = sorted({p.name for p in val_dir.iterdir() if p.is_dir() and not p.name.startswith(".")} - set(found))
    if extra:
        raise SecaError(f"{val_dir / extra[0]} has no training folder in {train_dir}; add it or remove it")
    all_names, label = dataset.class_names(data, official)
    names = [all_names[k] for k in ids]
    line = dataset.subset_note(len(ids), len(classes)) if note is None else note(ids)
    return BenchmarkData(
        folder_split(train_dir, found, names, None, data.max_pixels),
        folder_split(val_dir, found, names, None, data.max_pixels, "each class needs test images in val/<class>/"),
        names,
        split=C3BOX_SPLIT,
        names=label,
        notes=[line] if line else [],
    )


# ---- ImageNet-1k -------------------------------------------------------------------------------------------------
# The 1000 ImageNet-1k (ILSVRC-2012) WordNet ids in class-index order (sorted), without their leading "n": the label
# order of PODNet's imagenet_split/val_1000.txt
IMAGENET_WNIDS: tuple[str, ...] = tuple(
    "n" + w
    for w in (
        "01440764 01443537 01484850 01491361 01494475 01496331 01498041 01514668 01514859 01518878 01530575 01531178 "
        "01532829 01534433 01537544 01558993 01560419 01580077 01582220 01592084 01601694 01608432 01614925 01616318 "
        "01622779 01629819 01630670 01631663 01632458 01632777 01641577 01644373 01644900 01664065 01665541 01667114 "
        "01667778 01669191 01675722 01677366 01682714 01685808 01687978 01688243 01689811 01692333 01693334 01694178 "
        "01695060 01697457 01698640 01704323 01728572 01728920 01729322 01729977 01734418 01735189 01737021 01739381 "
        "01740131 01742172 01744401 01748264 01749939 01751748 01753488 01755581 01756291 01768244 01770081 01770393 "
        "01773157 01773549 01773797 01774384 01774750 01775062 01776313 01784675 01795545 01796340 01797886 01798484 "
        "01806143 01806567 01807496 01817953 01818515 01819313 01820546 01824575 01828970 01829413 01833805 01843065 "
        "01843383 01847000 01855032 01855672 01860187 01871265 01872401 01873310 01877812 01882714 01883070 01910747 "
        "01914609 01917289 01924916 01930112 01943899 01944390 01945685 01950731 01955084 01968897 01978287 01978455 "
        "01980166 01981276 01983481 01984695 01985128 01986214 01990800 02002556 02002724 02006656 02007558 02009229 "
        "02009912 02011460 02012849 02013706 02017213 02018207 02018795 02025239 02027492 02028035 02033041 02037110 "
        "02051845 02056570 02058221 02066245 02071294 02074367 02077923 02085620 02085782 02085936 02086079 02086240 "
        "02086646 02086910 02087046 02087394 02088094 02088238 02088364 02088466 02088632 02089078 02089867 02089973 "
        "02090379 02090622 02090721 02091032 02091134 02091244 02091467 02091635 02091831 02092002 02092339 02093256 "
        "02093428 02093647 02093754 02093859 02093991 02094114 02094258 02094433 02095314 02095570 02095889 02096051 "
        "02096177 02096294 02096437 02096585 02097047 02097130 02097209 02097298 02097474 02097658 02098105 02098286 "
        "02098413 02099267 02099429 02099601 02099712 02099849 02100236 02100583 02100735 02100877 02101006 02101388 "
        "02101556 02102040 02102177 02102318 02102480 02102973 02104029 02104365 02105056 02105162 02105251 02105412 "
        "02105505 02105641 02105855 02106030 02106166 02106382 02106550 02106662 02107142 02107312 02107574 02107683 "
        "02107908 02108000 02108089 02108422 02108551 02108915 02109047 02109525 02109961 02110063 02110185 02110341 "
        "02110627 02110806 02110958 02111129 02111277 02111500 02111889 02112018 02112137 02112350 02112706 02113023 "
        "02113186 02113624 02113712 02113799 02113978 02114367 02114548 02114712 02114855 02115641 02115913 02116738 "
        "02117135 02119022 02119789 02120079 02120505 02123045 02123159 02123394 02123597 02124075 02125311 02127052 "
        "02128385 02128757 02128925 02129165 02129604 02130308 02132136 02133161 02134084 02134418 02137549 02138441 "
        "02165105 02165456 02167151 02168699 02169497 02172182 02174001 02177972 02190166 02206856 02219486 02226429 "
        "02229544 02231487 02233338 02236044 02256656 02259212 02264363 02268443 02268853 02276258 02277742 02279972 "
        "02280649 02281406 02281787 02317335 02319095 02321529 02325366 02326432 02328150 02342885 02346627 02356798 "
        "02361337 02363005 02364673 02389026 02391049 02395406 02396427 02397096 02398521 02403003 02408429 02410509 "
        "02412080 02415577 02417914 02422106 02422699 02423022 02437312 02437616 02441942 02442845 02443114 02443484 "
        "02444819 02445715 02447366 02454379 02457408 02480495 02480855 02481823 02483362 02483708 02484975 02486261 "
        "02486410 02487347 02488291 02488702 02489166 02490219 02492035 02492660 02493509 02493793 02494079 02497673 "
        "02500267 02504013 02504458 02509815 02510455 02514041 02526121 02536864 02606052 02607072 02640242 02641379 "
        "02643566 02655020 02666196 02667093 02669723 02672831 02676566 02687172 02690373 02692877 02699494 02701002 "
        "02704792 02708093 02727426 02730930 02747177 02749479 02769748 02776631 02777292 02782093 02783161 02786058 "
        "02787622 02788148 02790996 02791124 02791270 02793495 02794156 02795169 02797295 02799071 02802426 02804414 "
        "02804610 02807133 02808304 02808440 02814533 02814860 02815834 02817516 02823428 02823750 02825657 02834397 "
        "02835271 02837789 02840245 02841315 02843684 02859443 02860847 02865351 02869837 02870880 02871525 02877765 "
        "02879718 02883205 02892201 02892767 02894605 02895154 02906734 02909870 02910353 02916936 02917067 02927161 "
        "02930766 02939185 02948072 02950826 02951358 02951585 02963159 02965783 02966193 02966687 02971356 02974003 "
        "02977058 02978881 02979186 02980441 02981792 02988304 02992211 02992529 02999410 03000134 03000247 03000684 "
        "03014705 03016953 03017168 03018349 03026506 03028079 03032252 03041632 03042490 03045698 03047690 03062245 "
        "03063599 03063689 03065424 03075370 03085013 03089624 03095699 03100240 03109150 03110669 03124043 03124170 "
        "03125729 03126707 03127747 03127925 03131574 03133878 03134739 03141823 03146219 03160309 03179701 03180011 "
        "03187595 03188531 03196217 03197337 03201208 03207743 03207941 03208938 03216828 03218198 03220513 03223299 "
        "03240683 03249569 03250847 03255030 03259280 03271574 03272010 03272562 03290653 03291819 03297495 03314780 "
        "03325584 03337140 03344393 03345487 03347037 03355925 03372029 03376595 03379051 03384352 03388043 03388183 "
        "03388549 03393912 03394916 03400231 03404251 03417042 03424325 03425413 03443371 03444034 03445777 03445924 "
        "03447447 03447721 03450230 03452741 03457902 03459775 03461385 03467068 03476684 03476991 03478589 03481172 "
        "03482405 03483316 03485407 03485794 03492542 03494278 03495258 03496892 03498962 03527444 03529860 03530642 "
        "03532672 03534580 03535780 03538406 03544143 03584254 03584829 03590841 03594734 03594945 03595614 03598930 "
        "03599486 03602883 03617480 03623198 03627232 03630383 03633091 03637318 03642806 03649909 03657121 03658185 "
        "03661043 03662601 03666591 03670208 03673027 03676483 03680355 03690938 03691459 03692522 03697007 03706229 "
        "03709823 03710193 03710637 03710721 03717622 03720891 03721384 03724870 03729826 03733131 03733281 03733805 "
        "03742115 03743016 03759954 03761084 03763968 03764736 03769881 03770439 03770679 03773504 03775071 03775546 "
        "03776460 03777568 03777754 03781244 03782006 03785016 03786901 03787032 03788195 03788365 03791053 03792782 "
        "03792972 03793489 03794056 03796401 03803284 03804744 03814639 03814906 03825788 03832673 03837869 03838899 "
        "03840681 03841143 03843555 03854065 03857828 03866082 03868242 03868863 03871628 03873416 03874293 03874599 "
        "03876231 03877472 03877845 03884397 03887697 03888257 03888605 03891251 03891332 03895866 03899768 03902125 "
        "03903868 03908618 03908714 03916031 03920288 03924679 03929660 03929855 03930313 03930630 03933933 03935335 "
        "03937543 03938244 03942813 03944341 03947888 03950228 03954731 03956157 03958227 03961711 03967562 03970156 "
        "03976467 03976657 03977966 03980874 03982430 03983396 03991062 03992509 03995372 03998194 04004767 04005630 "
        "04008634 04009552 04019541 04023962 04026417 04033901 04033995 04037443 04039381 04040759 04041544 04044716 "
        "04049303 04065272 04067472 04069434 04070727 04074963 04081281 04086273 04090263 04099969 04111531 04116512 "
        "04118538 04118776 04120489 04125021 04127249 04131690 04133789 04136333 04141076 04141327 04141975 04146614 "
        "04147183 04149813 04152593 04153751 04154565 04162706 04179913 04192698 04200800 04201297 04204238 04204347 "
        "04208210 04209133 04209239 04228054 04229816 04235860 04238763 04239074 04243546 04251144 04252077 04252225 "
        "04254120 04254680 04254777 04258138 04259630 04263257 04264628 04265275 04266014 04270147 04273569 04275548 "
        "04277352 04285008 04286575 04296562 04310018 04311004 04311174 04317175 04325704 04326547 04328186 04330267 "
        "04332243 04335435 04336792 04344873 04346328 04347754 04350905 04355338 04355933 04356056 04357314 04366367 "
        "04367480 04370456 04371430 04371774 04372370 04376876 04380533 04389033 04392985 04398044 04399382 04404412 "
        "04409515 04417672 04418357 04423845 04428191 04429376 04435653 04442312 04443257 04447861 04456115 04458633 "
        "04461696 04462240 04465501 04467665 04476259 04479046 04482393 04483307 04485082 04486054 04487081 04487394 "
        "04493381 04501370 04505470 04507155 04509417 04515003 04517823 04522168 04523525 04525038 04525305 04532106 "
        "04532670 04536866 04540053 04542943 04548280 04548362 04550184 04552348 04553703 04554684 04557648 04560804 "
        "04562935 04579145 04579432 04584207 04589890 04590129 04591157 04591713 04592741 04596742 04597913 04599235 "
        "04604644 04606251 04612504 04613696 06359193 06596364 06785654 06794110 06874185 07248320 07565083 07579787 "
        "07583066 07584110 07590611 07613480 07614500 07615774 07684084 07693725 07695742 07697313 07697537 07711569 "
        "07714571 07714990 07715103 07716358 07716906 07717410 07717556 07718472 07718747 07720875 07730033 07734744 "
        "07742313 07745940 07747607 07749582 07753113 07753275 07753592 07754684 07760859 07768694 07802026 07831146 "
        "07836838 07860988 07871810 07873807 07875152 07880968 07892512 07920052 07930864 07932039 09193705 09229709 "
        "09246464 09256479 09288635 09332890 09399592 09421951 09428293 09468604 09472597 09835506 10148035 10565667 "
        "11879895 11939491 12057211 12144580 12267677 12620546 12768682 12985857 12998815 13037406 13040303 13044778 "
        "13052670 13054560 13133613 15075141"
    ).split()
)
WNID = re.compile(r"n\d{8}")


@cache
def imagenet_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(IMAGENET_WNIDS)}


def clip_imagenet_names(wnids: Sequence[str]) -> list[str]:
    """The CLIP ImageNet names (OpenAI's curated list, as open_clip ships it) of ImageNet-1k WordNet ids."""
    from open_clip import IMAGENET_CLASSNAMES

    index = imagenet_index()
    unknown = [w for w in wnids if w not in index]
    if unknown:
        raise SecaError(f"'{shown(unknown[0], 40)}' is not the WordNet id of an ImageNet-1k class")
    return [IMAGENET_CLASSNAMES[index[w]] for w in wnids]
